/**
 * A binary min-heap over slots 0..n-1 ordered by (key, tie), with each slot's position kept so a
 * changed key is fixed in O(log n). The balancers that pick "the least loaded" use it to answer in
 * O(1) and absorb every load change in O(log n), instead of scanning ten thousand backends.
 */
export class IndexedHeap {
  readonly key: Float64Array;
  /** Second sort key: equal keys are ordered by it (random → random tie-breaking). */
  readonly tie: Float64Array;
  private readonly heap: Int32Array;
  private readonly pos: Int32Array;

  constructor(readonly size: number) {
    this.key = new Float64Array(size);
    this.tie = new Float64Array(size);
    this.heap = new Int32Array(size);
    this.pos = new Int32Array(size);
  }

  /** Orders the heap after key/tie were filled in directly; O(n). */
  build(): void {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      this.heap[i] = i;
      this.pos[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.down(i);
  }

  /** The slot with the smallest (key, tie). The heap must not be empty. */
  top(): number {
    return this.heap[0]!;
  }

  set(slot: number, key: number, tie: number): void {
    const oldKey = this.key[slot]!;
    const oldTie = this.tie[slot]!;
    this.key[slot] = key;
    this.tie[slot] = tie;
    const at = this.pos[slot]!;
    if (key < oldKey || (key === oldKey && tie < oldTie)) this.up(at);
    else this.down(at);
  }

  private less(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && this.tie[a]! < this.tie[b]!);
  }

  private up(i: number): void {
    const heap = this.heap;
    const slot = heap[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!this.less(slot, p)) break;
      heap[i] = p;
      this.pos[p] = i;
      i = parent;
    }
    heap[i] = slot;
    this.pos[slot] = i;
  }

  private down(i: number): void {
    const heap = this.heap;
    const n = this.size;
    const slot = heap[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(heap[r]!, heap[l]!) ? r : l;
      if (!this.less(heap[c]!, slot)) break;
      heap[i] = heap[c]!;
      this.pos[heap[i]!] = i;
      i = c;
    }
    heap[i] = slot;
    this.pos[slot] = i;
  }
}
