export {
  Config,
  ConfigError,
  Environment,
  NODE_ENV,
  SettingSpecs,
  SettingValues,
  SettingsTable,
  loadConfig,
  readEnvironment,
} from './config';
export { NodeEnv } from './settings';
