import type http from 'node:http';
import type { ApolloServerPlugin, PersistedQueryOptions } from '@apollo/server';
import type { Command } from 'commander';
import type { Request, RequestHandler } from 'express';
import type { DocumentNode, GraphQLSchema, OperationDefinitionNode, ValidationRule } from 'graphql';
import type { DataSource } from 'typeorm';
import type { Clock } from './clock';
import type { Config, SettingsTable } from './config';
import type { Context } from './context';
import type { Tables } from './db/data-source';
import type { Database } from './db/database';
import type { Notifications } from './db/notifications';
import type { Logger } from './logging';
import type { PruneTask } from './maintenance';
import type { RuleTree } from './shield/shield';

/** What the composition root builds before any feature: every feature may use these. */
export interface PlatformServices {
  readonly config: Config;
  readonly dataSource: DataSource;
  /** The database URL, for connections that cannot come from the pool (LISTEN, backup locks). */
  readonly databaseUrl: string;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Cache invalidations between instances (LISTEN/NOTIFY). */
  readonly notifications: Notifications;
  /** The features this process runs (the self-audit walks their schema; the permission layer their models). */
  readonly features: readonly Feature[];
}

/**
 * Every service, by name. Each feature adds the ones it provides by declaration merging
 * (`declare module '../feature' { interface Services extends XServices {} }` in its `x.feature.ts`).
 */
export interface Services extends PlatformServices {}

/** The name of a service some feature provides. */
export type ServiceName = Exclude<keyof Services, keyof PlatformServices>;

/** The services a feature's code may use: the platform's, and those it needs or provides. */
export type ServicesFor<N extends ServiceName> = Pick<Services, N | keyof PlatformServices>;

/** Ends what a hook started (timers, schedules, connections). */
export type Stop = () => void | Promise<void>;

type ResolverClass = new (...args: never[]) => object;

/** Adds a feature's fields to a request's context; runs in feature order, so later ones see earlier ones' fields. */
export type ContextStep = (request: Request, context: Context) => Partial<Context> | Promise<Partial<Context>>;

/** What a feature adds to the HTTP server, by stage. */
export interface HttpParts {
  /** Every request, after the health probes and before the security headers (the firewall's IP check). */
  readonly gates?: readonly RequestHandler[];
  /** GET routes of its own, by path (the JWKS). */
  readonly routes?: Readonly<Record<string, RequestHandler>>;
  /** Routes of its own for every method, by path prefix (file uploads and downloads), after the gates and security headers. */
  readonly mounts?: Readonly<Record<string, readonly RequestHandler[]>>;
  /** /graphql requests before the body is read (rate limits). */
  readonly beforeBody?: readonly RequestHandler[];
  /** /graphql requests once the JSON body is parsed, before Apollo (document size limits). */
  readonly afterBody?: readonly RequestHandler[];
}

/** An operation about to run, once its document is parsed, validated and its operation chosen. */
export interface ResolvedOperation {
  readonly source: string;
  readonly document: DocumentNode;
  readonly operation: OperationDefinitionNode | undefined;
  readonly operationName: string | null | undefined;
  readonly variables: Record<string, unknown> | undefined;
}

/** A check every operation passes before it runs, over HTTP and over WebSocket alike: it throws an AppError to refuse one. */
export type OperationCheck = (operation: ResolvedOperation, context: Context) => void;

/** What a feature adds to Apollo Server (and, for its rules and checks, to subscriptions over WebSocket). */
export interface GraphQLParts {
  readonly plugins?: readonly ApolloServerPlugin<Context>[];
  readonly validationRules?: readonly ValidationRule[];
  readonly operationChecks?: readonly OperationCheck[];
  /** Apollo's persisted-query cache, when one feature keeps its own (preloaded documents); Apollo's default otherwise. */
  readonly persistedQueries?: NonNullable<PersistedQueryOptions['cache']>;
}

/** What the server lends a feature that serves connections upgraded from HTTP (WebSocket subscriptions). */
export interface UpgradeParts {
  readonly httpServer: http.Server;
  readonly schema: GraphQLSchema;
  /** Every feature's validation rules and operation checks, as HTTP requests pass them. */
  readonly validationRules: readonly ValidationRule[];
  readonly operationChecks: readonly OperationCheck[];
  /** The client's address of an upgrade request, through TRUST_PROXY as for HTTP. */
  readonly clientIp: (request: http.IncomingMessage) => string;
  /** Whether it came over TLS: our own, or a trusted proxy's (X-Forwarded-Proto). */
  readonly isSecure: (request: http.IncomingMessage) => boolean;
  /** A Context built exactly as for an HTTP request with these headers from this address (the features' context steps). */
  readonly contextFor: (headers: Readonly<Record<string, string | undefined>>, clientIp: string) => Promise<Context>;
}

/** What the CLI lends a feature's commands. Results go to stdout (`say`), logs to stderr. */
export interface CommandTools<S> {
  /** The services as a server has them: migrations must be applied, the keyring must cover the data. */
  readonly withServices: <T>(work: (services: S, database: Database) => Promise<T>) => Promise<T>;
  /** The database alone, keyring installed, migrations in whatever state (migrate, restore). */
  readonly withDatabase: <T>(work: (database: Database, logger: Logger, config: Config) => Promise<T>) => Promise<T>;
  /**
   * The database with only these tables mapped, keyring installed, migrations applied (as for
   * withServices), without loading every feature: for a command that reads one feature's tables.
   */
  readonly withTables: <T>(tables: Tables, work: (database: Database, logger: Logger, config: Config) => Promise<T>) => Promise<T>;
  /** One line of result on stdout. */
  readonly say: (line: string) => void;
  /** An expected failure: printed as one line, exit code 1. */
  readonly fail: (message: string) => never;
  /** A secret from a hidden prompt, or piped on stdin; never an argument. */
  readonly readPassword: (prompt: string) => Promise<string>;
  /** A top-level command that several features add subcommands to (`keys`, `audit`), made on first use. */
  readonly group: (name: string, description: string) => Command;
}

/**
 * One feature: a folder that brings its settings, tables, services, API, rules, HTTP and Apollo
 * parts and CLI commands, and names the services of other features it uses. `src/features.ts`
 * lists them; nothing else changes when one is added.
 *
 * N: the other features' services it needs. P: the services it provides. Each hook receives
 * only those and the platform's (config, database, logger, clock, notifications).
 */
export interface Feature<N extends ServiceName = ServiceName, P extends ServiceName = ServiceName> {
  readonly name: string;
  /** Environment settings it reads (they join Config; the README's table lists each). */
  readonly settings?: SettingsTable;
  /** TypeORM entities (its tables) and subscribers. */
  readonly entities?: readonly Function[];
  readonly subscribers?: readonly Function[];
  /** The services of other features its code uses. */
  readonly needs?: readonly N[];
  /** Its services, each built on first use: the order of the feature list does not matter. */
  readonly provides?: { readonly [K in P]: (services: ServicesFor<N | P>) => Services[K] };
  /** Before the database opens (the keyring the encrypted columns need). */
  readonly boot?: (config: Config, logger: Logger) => void;
  /** Once every service exists, in every process that builds them (seeding, checks); returns what stops it. */
  readonly start?: (services: ServicesFor<N | P>) => Promise<Stop | void>;
  /** Jobs only a serving process runs (schedules); returns what stops them. */
  readonly schedule?: (services: ServicesFor<N | P>) => Stop;
  /** Rows the hourly maintenance job prunes, by name. */
  readonly maintenance?: (services: ServicesFor<N | P>) => Readonly<Record<string, PruneTask>>;
  /** Its part of the GraphQL API: resolver classes, their instances, and a rule for every field they add. */
  readonly resolvers?: readonly ResolverClass[];
  readonly rules?: RuleTree;
  readonly wire?: (services: ServicesFor<N | P>) => readonly object[];
  /** Its fields of each request's context. */
  readonly context?: (services: ServicesFor<N | P>) => ContextStep;
  readonly http?: (services: ServicesFor<N | P>) => HttpParts;
  readonly graphql?: (services: ServicesFor<N | P>, schema: GraphQLSchema) => GraphQLParts;
  /** Its upgrade handling on the HTTP server (WebSockets); the Apollo plugins it returns drain them at shutdown. */
  readonly upgrades?: (services: ServicesFor<N | P>, parts: UpgradeParts) => GraphQLParts;
  /** Its `bastion` subcommands. */
  readonly commands?: (program: Command, tools: CommandTools<ServicesFor<N | P>>) => void;
}

/**
 * A feature, typed by the services it provides (P, named here) and needs (N, inferred from
 * `needs`): `defineFeature<keyof AccountsServices>()({ … })`. Each hook is checked against
 * exactly those, and at run time receives an object that holds only those.
 */
export function defineFeature<P extends ServiceName = never>() {
  return <const N extends ServiceName = never>(feature: Feature<N, P>): Feature => feature as unknown as Feature;
}

/** The TypeORM entities and subscribers of these features, for a data source. */
export function tablesOf(features: readonly Feature[]): Tables {
  return {
    entities: features.flatMap((feature) => feature.entities ?? []),
    subscribers: features.flatMap((feature) => feature.subscribers ?? []),
  };
}
