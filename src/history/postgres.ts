/**
 * The PostgreSQL store as the commands reach it (`hourmeter store`): its connection
 * settings, taken as libpq takes them, and its versioned schema. The history layer is the
 * commands' only way into store/, so that a store's SQL and driver stay behind it; the
 * HistoryStore over these tables comes next (README, "hourmeter store").
 */
export { connectPostgres, describePostgresSettings, PostgresSettingsError, resolvePostgresSettings, systemDefaults } from '../store/postgres/connect.js';
export { migrate, SCHEMA_VERSION } from '../store/postgres/schema.js';
export { ImportRefused, importCaptures, type ImportDocument, type ImportJournalFile, type ImportResult } from '../store/postgres/import.js';
export { postgresCaptures } from '../store/postgres/captures.js';
export { postgresUserDirectory } from '../store/postgres/users.js';
