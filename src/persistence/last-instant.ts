/**
 * The last instant rmapp stores: 9999-12-31T23:59:59.999Z. Postgres does not read the extended years
 * JavaScript writes past it. No imports: the engine's clock (and so the public declarations) reads it.
 */
export const LAST_STORABLE_MS = 253_402_300_799_999;
