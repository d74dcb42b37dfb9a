export { Config, ConfigError, Environment, configWith, loadConfig, loadProcessConfig, readEnvironment } from './config';
export { EncryptionKeySetting, IntrospectionMode, LogLevel, NodeEnv, SETTINGS } from './settings';
