/**
 * The PostgreSQL store as the commands reach it: its connection settings, taken as libpq
 * takes them, its versioned schema, its captures, users and tokens, and its history
 * (postgres-store.ts; docs/store.md). The history layer is the commands' only way into
 * store/, so that a store's SQL and driver stay behind it.
 */
export { connectPostgres, describePostgresSettings, PostgresSettingsError, resolvePostgresSettings, systemDefaults } from '../store/postgres/connect.js';
export { migrate, SCHEMA_VERSION } from '../store/postgres/schema.js';
export { ImportRefused, importCaptures, type ImportDocument, type ImportJournalFile, type ImportResult } from '../store/postgres/import.js';
export { postgresCaptures } from '../store/postgres/captures.js';
export { postgresUserDirectory } from '../store/postgres/users.js';
export { storeStatus, type StoreStatus } from '../store/postgres/status.js';
export { PostgresHistoryStore } from './postgres-store.js';
export { canWriteIndex, copyGenerationAt } from '../store/postgres/index-replica.js';
