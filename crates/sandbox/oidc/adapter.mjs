// An in-memory oidc-provider adapter that the test routes can list.
//
// oidc-provider ships a memory adapter too, but its store is private and cannot
// be enumerated; tests need "which clients are registered now?". State lives in
// this process only: a restarted provider starts empty.

const stores = new Map();

function storeFor(model) {
  if (!stores.has(model)) stores.set(model, new Map());
  return stores.get(model);
}

function live(entry) {
  return entry && (entry.expiresAt === undefined || entry.expiresAt > Date.now());
}

export class MemoryAdapter {
  constructor(model) {
    this.model = model;
    this.store = storeFor(model);
  }

  async upsert(id, payload, expiresIn) {
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : undefined;
    this.store.set(id, { payload: { ...payload }, expiresAt });
  }

  async find(id) {
    const entry = this.store.get(id);
    if (!live(entry)) {
      this.store.delete(id);
      return undefined;
    }
    return { ...entry.payload };
  }

  async findByUid(uid) {
    return this.#findBy((payload) => payload.uid === uid);
  }

  async findByUserCode(userCode) {
    return this.#findBy((payload) => payload.userCode === userCode);
  }

  async consume(id) {
    const entry = this.store.get(id);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.store.delete(id);
  }

  async revokeByGrantId(grantId) {
    for (const store of stores.values()) {
      for (const [id, entry] of store) {
        if (entry.payload.grantId === grantId) store.delete(id);
      }
    }
  }

  #findBy(predicate) {
    for (const entry of this.store.values()) {
      if (live(entry) && predicate(entry.payload)) return { ...entry.payload };
    }
    return undefined;
  }
}

/** The ids of every live registered client, sorted. */
export function clientIds() {
  return [...storeFor('Client')]
    .filter(([, entry]) => live(entry))
    .map(([id]) => id)
    .sort();
}
