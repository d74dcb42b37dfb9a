export { Config, ConfigError, Environment, configWith, loadConfig, loadProcessConfig, readEnvironment } from './config';
export { EncryptionKeySetting, FirewallDefault, IntrospectionMode, LogLevel, MfaRequirement, NodeEnv, SETTINGS } from './settings';
