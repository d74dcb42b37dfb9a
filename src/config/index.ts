export { Config, ConfigError, Environment, configWith, loadConfig, readEnvironment } from './config';
export { IntrospectionMode, LogLevel, NodeEnv, SETTINGS } from './settings';
