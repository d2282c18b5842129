// Starts what every test file shares (one PostgreSQL server); each file makes its own database.
// Filled in by the server work: see test/support/db.ts.
export default async function setup(): Promise<void | (() => Promise<void>)> {}
