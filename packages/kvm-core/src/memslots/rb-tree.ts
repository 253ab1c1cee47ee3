/**
 * A red-black tree whose nodes live in parallel typed arrays, modelling the two trees behind
 * KVM's scalable memslots (Linux 5.17+):
 *
 * - `gfn_tree`: ordered by a slot's `base_gfn`, searched for the slot with the greatest base
 *   at or below a gfn (`search_memslots()`) and walked in order from a point
 *   (`kvm_memslot_iter_start()`); build it with `augmented = false`.
 * - `hva_tree`: an interval tree over `[userspace_addr, userspace_addr + size - 1]`, used by the
 *   MMU-notifier paths to find every slot a host range touches; build it with `augmented = true`.
 *
 * @see include/linux/kvm_host.h struct kvm_memslots, search_memslots(), kvm_memslot_iter_start()
 * @see include/linux/interval_tree_generic.h INTERVAL_TREE_DEFINE()
 *
 * Why typed arrays rather than one object per node: memslot lookups sit on the hot path of every
 * simulated guest access, and a pool of Float64Array/Int32Array columns keeps the descent
 * monomorphic, allocation-free and cache-friendly. A node is a small integer handle; handle 0 is
 * the shared nil leaf (black, "subtree last" below any real value) so the balancing code never
 * needs null checks, exactly like the CLRS sentinel.
 *
 * Keys and lasts are non-negative integers up to 2^53 (page frame numbers), stored as float64.
 * Equal keys are allowed: an insert goes to the right of existing equal keys, so equal keys keep
 * their insertion order in an in-order walk (rotations and deletion both preserve in-order).
 */

const RED = 0;
const BLACK = 1;
/** Colour tag of a handle sitting on the free list; lets remove() reject stale handles cheaply. */
const FREE = 2;

/** The nil handle: "no node". */
const NIL = 0;

/** Below every legal `last`, so nil never wins a subtree-max comparison. */
const NO_LAST = -1;

const DEFAULT_CAPACITY = 16;

export class RbTree {
  /** Whether `subtreeLast` is maintained; interval queries are only valid when it is. */
  readonly augmented: boolean;

  // Node columns. Index 0 is nil; children are interleaved (left at 2n, right at 2n+1) so the
  // descent can pick a side by arithmetic and the balancing code can be written once for both
  // mirror images.
  private keys: Float64Array;
  private lasts: Float64Array;
  /** Max `last` over the subtree rooted at each node (the kernel's `__subtree_last`). */
  private subtreeLast: Float64Array;
  private values: Int32Array;
  private kids: Int32Array;
  private parents: Int32Array;
  private colours: Uint8Array;

  private root = NIL;
  private count = 0;
  /** Number of slots ever handed out, including nil; handles >= this have never been used. */
  private highWater = 1;
  /** Head of the free list, threaded through the left-child column. */
  private freeHead = NIL;

  constructor(initialCapacity: number = DEFAULT_CAPACITY, augmented: boolean = false) {
    if (!Number.isInteger(initialCapacity) || initialCapacity < 1) {
      throw new RangeError(`RbTree: initialCapacity must be a positive integer, got ${initialCapacity}`);
    }
    this.augmented = augmented;
    const slots = initialCapacity + 1;
    this.keys = new Float64Array(slots);
    this.lasts = new Float64Array(slots);
    this.subtreeLast = new Float64Array(slots);
    this.values = new Int32Array(slots);
    this.kids = new Int32Array(slots * 2);
    this.parents = new Int32Array(slots);
    this.colours = new Uint8Array(slots);
    this.resetNil();
  }

  /** Number of live nodes. */
  get size(): number {
    return this.count;
  }

  /** Number of nodes the pool can hold before it next doubles. */
  get capacity(): number {
    return this.keys.length - 1;
  }

  key(node: number): number {
    return this.keys[node]!;
  }

  last(node: number): number {
    return this.lasts[node]!;
  }

  value(node: number): number {
    return this.values[node]!;
  }

  /**
   * Inserts a node and returns its handle (> 0). The handle stays valid, and keeps naming the
   * same node, until that node is removed; growth of the pool never renumbers handles.
   * In an augmented tree `last` must be >= `key` (an interval is never empty).
   * @see lib/rbtree.c rb_insert_color()
   * @see include/linux/interval_tree_generic.h INTERVAL_TREE_DEFINE() (ITPREFIX ## _insert)
   */
  insert(key: number, last: number, value: number): number {
    // The negated comparisons also reject NaN, which would silently corrupt the ordering.
    if (!(key >= 0) || !(last >= 0) || (this.augmented && !(last >= key))) {
      throw new RangeError(`RbTree.insert: bad key/last [${key}, ${last}]`);
    }
    const z = this.allocate();
    const keys = this.keys;
    const kids = this.kids;
    const subtreeLast = this.subtreeLast;
    const augmented = this.augmented;

    let parent = NIL;
    let side = 0;
    let n = this.root;
    while (n !== NIL) {
      // Every node on the descent gains z as a descendant, so its subtree max can only grow;
      // doing it on the way down saves a second upward walk.
      if (augmented && subtreeLast[n]! < last) subtreeLast[n] = last;
      parent = n;
      side = key < keys[n]! ? 0 : 1; // ties go right: stable insertion order among equal keys
      n = kids[(n << 1) | side]!;
    }

    keys[z] = key;
    this.lasts[z] = last;
    subtreeLast[z] = last;
    this.values[z] = value | 0;
    kids[z << 1] = NIL;
    kids[(z << 1) | 1] = NIL;
    this.parents[z] = parent;
    this.colours[z] = RED;
    if (parent === NIL) this.root = z;
    else kids[(parent << 1) | side] = z;
    this.count++;

    this.insertFixup(z);
    return z;
  }

  /**
   * Removes a live node in O(log n) and puts its handle on the free list for reuse.
   * @see lib/rbtree.c rb_erase()
   * @see include/linux/rbtree_augmented.h __rb_erase_augmented()
   */
  remove(node: number): void {
    this.assertLive(node, 'remove');
    const kids = this.kids;
    const parents = this.parents;
    const colours = this.colours;
    const z = node;
    const l = kids[z << 1]!;
    const r = kids[(z << 1) | 1]!;

    let x: number; // the node that moved into the removed black position (may be nil)
    let xParent: number; // x's parent, tracked explicitly because nil has no meaningful parent
    let removedColour: number;
    let propagateFrom: number;

    if (l === NIL || r === NIL) {
      x = l === NIL ? r : l;
      xParent = parents[z]!;
      removedColour = colours[z]!;
      this.transplant(z, x);
      propagateFrom = xParent;
    } else {
      // Two children: the in-order successor y takes z's place and colour, so the colour that
      // actually leaves the tree is y's, from y's old position.
      let y = r;
      while (kids[y << 1]! !== NIL) y = kids[y << 1]!;
      removedColour = colours[y]!;
      x = kids[(y << 1) | 1]!;
      if (y === r) {
        xParent = y;
      } else {
        xParent = parents[y]!;
        kids[xParent << 1] = x;
        if (x !== NIL) parents[x] = xParent;
        kids[(y << 1) | 1] = r;
        parents[r] = y;
      }
      this.transplant(z, y);
      kids[y << 1] = l;
      parents[l] = y;
      colours[y] = colours[z]!;
      if (this.augmented) {
        // y's path from its old parent up to y itself changed first; fix that stretch, then hand
        // y the value its new position held before, so the climb above y can stop as soon as a
        // node's max is unchanged (the kernel's augment->copy + augment->propagate).
        if (y !== r) this.propagate(xParent, y);
        this.subtreeLast[y] = this.subtreeLast[z]!;
      }
      propagateFrom = y;
    }

    if (this.augmented) this.propagate(propagateFrom, NIL);
    if (removedColour === BLACK) this.eraseFixup(x, xParent);
    this.release(z);
  }

  /**
   * Swaps the value stored at a live node in O(1), leaving its key, interval and position alone:
   * the model of rb_replace_node() when a slot is replaced by one with the same key.
   * @see lib/rbtree.c rb_replace_node()
   */
  replaceValue(node: number, value: number): void {
    this.assertLive(node, 'replaceValue');
    this.values[node] = value | 0;
  }

  /**
   * The node with the greatest key <= `key`, or 0. Among equal keys, the last inserted.
   * @see include/linux/kvm_host.h search_memslots()
   */
  floor(key: number): number {
    const keys = this.keys;
    const kids = this.kids;
    let best = NIL;
    let n = this.root;
    while (n !== NIL) {
      if (keys[n]! <= key) {
        best = n;
        n = kids[(n << 1) | 1]!;
      } else {
        n = kids[n << 1]!;
      }
    }
    return best;
  }

  /**
   * search_memslots()'s own descent: the node whose [key, last] contains `point`; otherwise the
   * negated handle of the last node visited (one of the two nodes bordering the hole), or 0 if
   * the tree is empty. The gfn tree stores a slot's last gfn as `last` for this.
   * @see include/linux/kvm_host.h search_memslots()
   */
  searchPoint(point: number): number {
    const keys = this.keys;
    const lasts = this.lasts;
    const kids = this.kids;
    let visited = NIL;
    let n = this.root;
    while (n !== NIL) {
      visited = n;
      if (point >= keys[n]!) {
        if (point <= lasts[n]!) return n;
        n = kids[(n << 1) | 1]!;
      } else {
        n = kids[n << 1]!;
      }
    }
    return -visited;
  }

  /**
   * The first node (in order) with key > `key`, or 0: where a range walk starts when no slot
   * contains the start gfn.
   * @see include/linux/kvm_host.h kvm_memslot_iter_start()
   */
  ceilingAbove(key: number): number {
    const keys = this.keys;
    const kids = this.kids;
    let best = NIL;
    let n = this.root;
    while (n !== NIL) {
      if (keys[n]! > key) {
        best = n;
        n = kids[n << 1]!;
      } else {
        n = kids[(n << 1) | 1]!;
      }
    }
    return best;
  }

  /** The smallest node in order, or 0 when empty. @see lib/rbtree.c rb_first() */
  first(): number {
    return this.root === NIL ? NIL : this.extreme(this.root, 0);
  }

  /** The largest node in order, or 0 when empty. @see lib/rbtree.c rb_last() */
  lastNode(): number {
    return this.root === NIL ? NIL : this.extreme(this.root, 1);
  }

  /** In-order successor of a live node, or 0 at the end. @see lib/rbtree.c rb_next() */
  next(node: number): number {
    return this.step(node, 1);
  }

  /** In-order predecessor of a live node, or 0 at the start. @see lib/rbtree.c rb_prev() */
  prev(node: number): number {
    return this.step(node, 0);
  }

  /**
   * The first node in key order whose `[key, last]` intersects the closed range
   * `[start, last]`, or 0. Augmented trees only.
   * @see include/linux/interval_tree_generic.h INTERVAL_TREE_DEFINE() (ITPREFIX ## _iter_first)
   */
  firstOverlap(start: number, last: number): number {
    const root = this.root;
    if (root === NIL || this.subtreeLast[root]! < start) return NIL;
    return this.subtreeSearch(root, start, last);
  }

  /**
   * The next node after `node` in key order that intersects `[start, last]`, or 0. `node` must be
   * a result of firstOverlap/nextOverlap for the same range; visiting all k results costs
   * O(k log n) at worst and usually far less.
   * @see include/linux/interval_tree_generic.h INTERVAL_TREE_DEFINE() (ITPREFIX ## _iter_next)
   */
  nextOverlap(node: number, start: number, last: number): number {
    const keys = this.keys;
    const kids = this.kids;
    const parents = this.parents;
    const subtreeLast = this.subtreeLast;
    let n = node;
    // Invariant at the top of the loop: keys[n] <= last, so only n's right subtree and the
    // ancestors we reach by climbing out of a left subtree can still hold results.
    for (;;) {
      const right = kids[(n << 1) | 1]!;
      if (right !== NIL && subtreeLast[right]! >= start) return this.subtreeSearch(right, start, last);
      // Climb until we arrive from a left child: that ancestor is the next node in order.
      let from: number;
      do {
        from = n;
        n = parents[n]!;
        if (n === NIL) return NIL;
      } while (kids[(n << 1) | 1]! === from);
      // Everything further right starts even later, so one start past the range ends the walk.
      if (keys[n]! > last) return NIL;
      if (this.lasts[n]! >= start) return n;
    }
  }

  /** Drops every node; capacity is kept, handles restart from 1. */
  clear(): void {
    this.root = NIL;
    this.count = 0;
    this.highWater = 1;
    this.freeHead = NIL;
    this.resetNil();
  }

  /**
   * Verifies every structural invariant and throws an Error naming the first violation:
   * parent/child links, BST order, red-black colouring and black height, the subtree-last
   * augmentation, the node count and the free list. O(n); for tests.
   */
  checkInvariants(): void {
    const kids = this.kids;
    const colours = this.colours;
    if (colours[NIL] !== BLACK) throw new Error('rb: nil sentinel is not black');
    if (kids[0] !== NIL || kids[1] !== NIL) throw new Error('rb: nil sentinel has children');
    if (this.subtreeLast[NIL] !== NO_LAST) throw new Error('augment: nil sentinel subtree-last was overwritten');
    const root = this.root;
    if (root !== NIL) {
      if (this.parents[root] !== NIL) throw new Error(`rb: root ${root} has parent ${this.parents[root]}`);
      if (colours[root] !== BLACK) throw new Error(`rb: root ${root} is red`);
    }
    let reached = 0;
    const visit = (n: number, lo: number, hi: number): number => {
      if (n === NIL) return 1;
      if (n < 0 || n >= this.highWater) throw new Error(`rb: handle ${n} out of range`);
      const colour = colours[n]!;
      if (colour !== RED && colour !== BLACK) throw new Error(`rb: node ${n} reachable but has colour ${colour}`);
      if (++reached > this.count) throw new Error('rb: more reachable nodes than size (cycle?)');
      const k = this.keys[n]!;
      if (!(k >= lo && k <= hi)) throw new Error(`bst: key ${k} of node ${n} outside [${lo}, ${hi}]`);
      const l = kids[n << 1]!;
      const r = kids[(n << 1) | 1]!;
      for (const c of [l, r]) {
        if (c === NIL) continue;
        if (this.parents[c] !== n) throw new Error(`rb: child ${c} of ${n} has parent ${this.parents[c]}`);
        if (colour === RED && colours[c] === RED) throw new Error(`rb: red node ${n} has red child ${c}`);
      }
      const bl = visit(l, lo, k);
      const br = visit(r, k, hi);
      if (bl !== br) throw new Error(`rb: black heights differ under node ${n} (${bl} vs ${br})`);
      if (this.augmented) {
        const want = Math.max(this.lasts[n]!, this.subtreeLast[l]!, this.subtreeLast[r]!);
        if (this.subtreeLast[n] !== want) {
          throw new Error(`augment: node ${n} subtree-last ${this.subtreeLast[n]} should be ${want}`);
        }
      }
      return bl + (colour === BLACK ? 1 : 0);
    };
    visit(root, -Infinity, Infinity);
    if (reached !== this.count) throw new Error(`size: ${this.count} but ${reached} nodes reachable`);

    let free = 0;
    for (let f = this.freeHead; f !== NIL; f = kids[f << 1]!) {
      if (colours[f] !== FREE) throw new Error(`free list: node ${f} is not marked free`);
      if (++free > this.highWater) throw new Error('free list: cycle');
    }
    if (free + this.count + 1 !== this.highWater) {
      throw new Error(`free list: ${free} free + ${this.count} live + nil != ${this.highWater} slots used`);
    }
  }

  // ---- internals -------------------------------------------------------------------------

  private resetNil(): void {
    this.kids[0] = NIL;
    this.kids[1] = NIL;
    this.parents[NIL] = NIL;
    this.colours[NIL] = BLACK;
    this.subtreeLast[NIL] = NO_LAST;
    this.lasts[NIL] = NO_LAST;
  }

  private assertLive(node: number, op: string): void {
    if (!(node > 0 && node < this.highWater) || this.colours[node] === FREE) {
      throw new RangeError(`RbTree.${op}: ${node} is not a live node handle`);
    }
  }

  private allocate(): number {
    let n = this.freeHead;
    if (n !== NIL) {
      this.freeHead = this.kids[n << 1]!;
      return n;
    }
    if (this.highWater === this.keys.length) this.grow();
    n = this.highWater++;
    return n;
  }

  private release(n: number): void {
    this.colours[n] = FREE;
    this.kids[n << 1] = this.freeHead;
    this.kids[(n << 1) | 1] = NIL;
    this.parents[n] = NIL;
    this.freeHead = n;
    this.count--;
  }

  /** Doubling keeps inserts amortised O(log n) while handles stay plain indices. */
  private grow(): void {
    const slots = this.keys.length * 2;
    const keys = new Float64Array(slots);
    keys.set(this.keys);
    this.keys = keys;
    const lasts = new Float64Array(slots);
    lasts.set(this.lasts);
    this.lasts = lasts;
    const subtreeLast = new Float64Array(slots);
    subtreeLast.set(this.subtreeLast);
    this.subtreeLast = subtreeLast;
    const values = new Int32Array(slots);
    values.set(this.values);
    this.values = values;
    const kids = new Int32Array(slots * 2);
    kids.set(this.kids);
    this.kids = kids;
    const parents = new Int32Array(slots);
    parents.set(this.parents);
    this.parents = parents;
    const colours = new Uint8Array(slots);
    colours.set(this.colours);
    this.colours = colours;
  }

  /** The leftmost (side 0) or rightmost (side 1) node of a non-empty subtree. */
  private extreme(n: number, side: number): number {
    const kids = this.kids;
    let c = kids[(n << 1) | side]!;
    while (c !== NIL) {
      n = c;
      c = kids[(n << 1) | side]!;
    }
    return n;
  }

  /** In-order neighbour towards `side` (1 = successor, 0 = predecessor). */
  private step(node: number, side: number): number {
    const kids = this.kids;
    const c = kids[(node << 1) | side]!;
    if (c !== NIL) return this.extreme(c, side ^ 1);
    const parents = this.parents;
    let n = node;
    let p = parents[n]!;
    while (p !== NIL && kids[(p << 1) | side] === n) {
      n = p;
      p = parents[n]!;
    }
    return p;
  }

  /** Replaces u by v (possibly nil) in u's parent; u's own links are left for the caller. */
  private transplant(u: number, v: number): void {
    const p = this.parents[u]!;
    if (p === NIL) this.root = v;
    else if (this.kids[p << 1] === u) this.kids[p << 1] = v;
    else this.kids[(p << 1) | 1] = v;
    if (v !== NIL) this.parents[v] = p;
  }

  /**
   * Rotates x down towards `side` (0 = left rotation), lifting its child on the other side.
   * Only x and the lifted node change subtrees, so the augmentation is fixed in O(1): the lifted
   * node now spans exactly what x spanned, and x is recomputed from its new children.
   * @see include/linux/rbtree_augmented.h RB_DECLARE_CALLBACKS() (the rotate callback)
   */
  private rotate(x: number, side: number): void {
    const kids = this.kids;
    const parents = this.parents;
    const other = side ^ 1;
    const y = kids[(x << 1) | other]!;
    const inner = kids[(y << 1) | side]!;
    kids[(x << 1) | other] = inner;
    if (inner !== NIL) parents[inner] = x;
    const p = parents[x]!;
    parents[y] = p;
    if (p === NIL) this.root = y;
    else if (kids[p << 1] === x) kids[p << 1] = y;
    else kids[(p << 1) | 1] = y;
    kids[(y << 1) | side] = x;
    parents[x] = y;
    if (this.augmented) {
      const subtreeLast = this.subtreeLast;
      subtreeLast[y] = subtreeLast[x]!;
      subtreeLast[x] = this.computeSubtreeLast(x);
    }
  }

  private computeSubtreeLast(n: number): number {
    const subtreeLast = this.subtreeLast;
    let m = this.lasts[n]!;
    const l = subtreeLast[this.kids[n << 1]!]!;
    const r = subtreeLast[this.kids[(n << 1) | 1]!]!;
    if (l > m) m = l;
    if (r > m) m = r;
    return m;
  }

  /**
   * Recomputes subtree-last from n upwards until `stop` (exclusive), stopping early once a node
   * comes out unchanged: its ancestors were consistent with that value already.
   * @see include/linux/rbtree_augmented.h RB_DECLARE_CALLBACKS() (the propagate callback)
   */
  private propagate(n: number, stop: number): void {
    const subtreeLast = this.subtreeLast;
    const parents = this.parents;
    while (n !== stop) {
      const m = this.computeSubtreeLast(n);
      if (subtreeLast[n] === m) break;
      subtreeLast[n] = m;
      n = parents[n]!;
    }
  }

  /**
   * Restores the red-black rules after linking a red leaf, with both mirror images handled by
   * the `side` variable.
   * @see lib/rbtree.c __rb_insert()
   */
  private insertFixup(z: number): void {
    const kids = this.kids;
    const parents = this.parents;
    const colours = this.colours;
    let p = parents[z]!;
    while (colours[p] === RED) {
      // p is red so it is not the root: the grandparent exists.
      const g = parents[p]!;
      const side = kids[g << 1] === p ? 0 : 1;
      const uncle = kids[(g << 1) | (side ^ 1)]!;
      if (colours[uncle] === RED) {
        // Recolour and push the red violation two levels up.
        colours[p] = BLACK;
        colours[uncle] = BLACK;
        colours[g] = RED;
        z = g;
        p = parents[z]!;
        continue;
      }
      if (kids[(p << 1) | (side ^ 1)] === z) {
        // Inner grandchild: straighten into the outer case first.
        this.rotate(p, side);
        z = p;
        p = parents[z]!;
      }
      colours[p] = BLACK;
      colours[g] = RED;
      this.rotate(g, side ^ 1);
      break;
    }
    colours[this.root] = BLACK;
  }

  /**
   * Restores black height after a black node left the tree, x carrying the missing black. The
   * sibling of x is never nil here (its side holds at least one more black), which is what
   * makes `kids[p << 1] === x` a sound side test even when x is nil.
   * @see lib/rbtree.c ____rb_erase_color()
   */
  private eraseFixup(x: number, p: number): void {
    const kids = this.kids;
    const parents = this.parents;
    const colours = this.colours;
    while (x !== this.root && colours[x] === BLACK) {
      const side = kids[p << 1] === x ? 0 : 1;
      const other = side ^ 1;
      let w = kids[(p << 1) | other]!;
      if (colours[w] === RED) {
        // Red sibling: rotate so x gets a black sibling, then fall into the other cases.
        colours[w] = BLACK;
        colours[p] = RED;
        this.rotate(p, side);
        w = kids[(p << 1) | other]!;
      }
      const near = kids[(w << 1) | side]!;
      const far = kids[(w << 1) | other]!;
      if (colours[near] !== RED && colours[far] !== RED) {
        // Take a black off the sibling's side too and move the deficit up.
        colours[w] = RED;
        x = p;
        p = parents[x]!;
        continue;
      }
      if (colours[far] !== RED) {
        colours[near] = BLACK;
        colours[w] = RED;
        this.rotate(w, other);
        w = kids[(p << 1) | other]!;
      }
      colours[w] = colours[p]!;
      colours[p] = BLACK;
      colours[kids[(w << 1) | other]!] = BLACK;
      this.rotate(p, side);
      x = this.root;
      break;
    }
    colours[x] = BLACK;
  }

  /**
   * Leftmost node of subtree n intersecting [start, last], or 0. Going left whenever the left
   * subtree reaches `start` is safe: if nothing there intersects, some interval there ends at or
   * after `start` yet begins after `last`, and then so does everything to its right.
   * @see include/linux/interval_tree_generic.h INTERVAL_TREE_DEFINE() (ITPREFIX ## _subtree_search)
   */
  private subtreeSearch(n: number, start: number, last: number): number {
    const keys = this.keys;
    const lasts = this.lasts;
    const kids = this.kids;
    const subtreeLast = this.subtreeLast;
    for (;;) {
      const l = kids[n << 1]!;
      if (l !== NIL && subtreeLast[l]! >= start) {
        n = l;
        continue;
      }
      if (keys[n]! > last) return NIL;
      if (lasts[n]! >= start) return n;
      n = kids[(n << 1) | 1]!;
      if (n === NIL || subtreeLast[n]! < start) return NIL;
    }
  }
}
