import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmLifecycle, InvalidTransitionError, canTransition, VM_STATES, isLive } from '../../../src-main/hypervisor/lifecycle';

test('a VM goes stopped -> starting -> running <-> paused -> stopped', () => {
  const l = new VmLifecycle();
  const seen: string[] = [];
  l.onChange((s, prev) => seen.push(`${prev}>${s}`));
  l.to('starting');
  l.to('running');
  l.to('paused');
  l.to('running');
  l.to('paused');
  l.to('stopped');
  assert.deepEqual(seen, ['stopped>starting', 'starting>running', 'running>paused', 'paused>running', 'running>paused', 'paused>stopped']);
});

test('saving leads to saved, and a saved VM starts again', () => {
  const l = new VmLifecycle('stopped');
  l.to('starting');
  l.to('running');
  l.to('saving');
  l.to('saved');
  l.to('starting');
  assert.equal(l.state, 'starting');
});

test('a dead guest aborts a VM from any live state', () => {
  for (const from of ['starting', 'running', 'paused', 'saving'] as const) assert.ok(canTransition(from, 'aborted'), from);
  for (const from of ['stopped', 'saved', 'aborted'] as const) assert.ok(!canTransition(from, 'aborted'), from);
});

test('forbidden transitions throw and leave the state alone', () => {
  const l = new VmLifecycle();
  assert.throws(() => l.to('paused'), InvalidTransitionError);
  assert.throws(() => l.to('running'), /cannot go from 'stopped' to 'running'/);
  assert.equal(l.state, 'stopped');
  l.to('starting');
  assert.throws(() => l.to('starting'), InvalidTransitionError);
  assert.throws(() => l.to('saved'), InvalidTransitionError);
});

test('every state has a way out, and only live states have a process', () => {
  for (const s of VM_STATES)
    assert.ok(
      VM_STATES.some((t) => canTransition(s, t)),
      s,
    );
  assert.deepEqual(VM_STATES.filter(isLive), ['starting', 'running', 'paused', 'saving']);
});

test('a VM loaded in a live state (the app died) comes back aborted', () => {
  assert.equal(new VmLifecycle('running').state, 'aborted');
  assert.equal(new VmLifecycle('saved').state, 'saved');
});
