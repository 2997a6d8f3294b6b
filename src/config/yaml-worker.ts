/** @module Worker-thread entry of {@link parseYamlTextAsync}: parses the text it is given and posts the result. */
import { parentPort, workerData } from 'node:worker_threads';
import { parseYamlText } from './yaml-text.ts';

parentPort?.postMessage(parseYamlText(workerData as string));
