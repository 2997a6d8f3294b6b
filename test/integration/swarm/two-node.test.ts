/**
 * @module A two-node swarm: two engines in two network namespaces joined by a veth pair (10.213.0.1/24 and .2, no
 * other route), the second one joining as a worker. A stack deployed by the stack-deploy task with 2 replicas and
 * `max_replicas_per_node: 1` runs one task on each node, converges, and the two tasks reach each other over the
 * stack's overlay network (VXLAN between the namespaces).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDocker, verifyStack } from '../../../src/compose/verify.ts';
import stackDeploy from '../../../src/workers/tasks/stack-deploy.ts';
import { BUSYBOX_IMAGE } from '../../helpers/docker.ts';
import { requireSwarm, startSwarmCluster, swarmUnavailable, type SwarmCluster } from '../../helpers/swarm-cluster.ts';

const STACK = 'shiparr-two-node';

const composeYaml = `services:
  app:
    image: ${BUSYBOX_IMAGE}
    pull_policy: never
    init: true
    command: ["sh", "-c", "exec sleep 3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
`;

interface Task {
  ID: string;
  NodeID: string;
  Status: { State: string; ContainerStatus?: { ContainerID?: string } };
  NetworksAttachments?: { Network: { Spec: { Name: string } }; Addresses: string[] }[];
}

describe('a two-node swarm in two network namespaces', { concurrency: false }, () => {
  let reason: string | null = null;
  let cluster: SwarmCluster | undefined;
  let dir = '';

  before(async () => {
    reason = await swarmUnavailable();
    if (reason) return;
    try {
      cluster = await startSwarmCluster({ nodes: 2 });
    } catch (err) {
      reason = `could not start a two-node swarm: ${(err as Error).message}`;
      return;
    }
    dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-two-node-'));
    await writeFile(path.join(dir, 'compose.yaml'), composeYaml);
  });

  after(async () => {
    await cluster?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('2 replicas with max_replicas_per_node 1 run one task on each node and reach each other', async (t) => {
    if (!requireSwarm(t, reason)) return;
    const manager = cluster!.manager;
    const worker = cluster!.workers[0]!;
    const r = await stackDeploy({
      cwd: dir,
      project: STACK,
      files: [],
      dockerHost: manager.host,
      pull: 'never',
      prune: true,
      timeoutMs: 120_000,
    });
    assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}\n${r.output}`);
    const docker = createDocker(manager.host);
    const v = await verifyStack({ docker, stack: STACK, timeoutMs: 120_000, pollMs: 250 });
    assert.equal(v.ok, true, v.ok ? '' : `${v.code}: ${v.message}`);
    assert.match(v.ok ? v.summary : '', /shiparr-two-node_app \(2\/2 running\)/);

    const tasks = (
      (await docker.listTasks({
        filters: { service: [`${STACK}_app`], 'desired-state': ['running'] },
      })) as Task[]
    ).filter((x) => x.Status.State === 'running');
    assert.equal(tasks.length, 2);
    const nodes = await docker.listNodes();
    assert.equal(nodes.length, 2);
    assert.deepEqual(new Set(tasks.map((x) => x.NodeID)), new Set(nodes.map((n) => n.ID)), 'one task per node');

    // The overlay works across the veth link: the manager's task pings the worker's task by its overlay address.
    const onNode = (e: typeof manager) =>
      tasks.find((x) => nodes.find((n) => n.ID === x.NodeID)?.Status?.Addr === e.address);
    const mine = onNode(manager);
    const theirs = onNode(worker);
    assert.ok(mine && theirs, 'a task on each node, matched by node address');
    const addr = theirs.NetworksAttachments?.find((a) => a.Network.Spec.Name === `${STACK}_default`)?.Addresses[0];
    assert.ok(addr, 'the worker task has an overlay address');
    const ping = await manager.docker([
      'exec',
      mine.Status.ContainerStatus?.ContainerID ?? '',
      'ping',
      '-c',
      '1',
      '-W',
      '5',
      addr.split('/')[0]!,
    ]);
    assert.equal(ping.code, 0, ping.output);
  });
});
