/** @module JSON Schema of project files, generated from the zod schema so editors can validate and complete them. */
import { z } from 'zod';
import { ProjectFileSchema } from './schema.ts';

/** `$id` of the published schema (a URN: it must not pretend to be fetchable from somewhere we do not control). */
export const PROJECT_SCHEMA_ID = 'urn:shiparr:schema:project-file';

/** The project-file JSON Schema (input side: fields with defaults are optional). */
export function projectJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(ProjectFileSchema, { io: 'input' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  // Key order is fixed so the committed file only changes when the schema does.
  return { $schema, $id: PROJECT_SCHEMA_ID, title: 'Shiparr project file', ...rest };
}

/** The schema as committed in `config/project.schema.json`: 2-space JSON plus a trailing newline. */
export function renderProjectJsonSchema(): string {
  return `${JSON.stringify(projectJsonSchema(), null, 2)}\n`;
}
