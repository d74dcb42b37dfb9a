export { Config, ConfigError, Environment, configWith, loadConfig, readEnvironment } from './config';
export { EncryptionKeySetting, IntrospectionMode, LogLevel, NodeEnv, SETTINGS } from './settings';
