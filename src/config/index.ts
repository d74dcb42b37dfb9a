export { Config, ConfigError, Environment, configWith, loadConfig, loadProcessConfig, readEnvironment } from './config';
export {
  EncryptionKeySetting,
  FirewallDefault,
  IntrospectionMode,
  LogLevel,
  MfaRequirement,
  NodeEnv,
  RateLimit,
  SETTINGS,
} from './settings';
