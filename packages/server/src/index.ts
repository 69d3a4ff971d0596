/** `@keyward/server`: the key service. */
export { startServer, SERVER_VERSION, type RunningServer } from './server.js';
export { loadConfig, configFromEnv, ServerConfigSchema, type ServerConfig, type ServerConfigInput } from './config.js';
export { ERROR_REGISTRY, API_ERRORS, type ApiErrorCode } from './api/errors.js';
