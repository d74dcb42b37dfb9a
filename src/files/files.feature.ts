import type { Request } from 'express';
import type { DataSource } from 'typeorm';
import { activeKeyring } from '../crypto/active-keyring';
import type { ModelDefinition } from '../data/define-model';
import { defineFeature, type Feature } from '../feature';
import { rateLimitGate } from '../firewall/rate-limits';
import { proxyTrust } from '../http/client-ip';
import type { ChunkStore } from './chunk-store';
import { ContentKeys, Contents, Stores } from './content-io';
import { FileChunk } from './file-chunk.entity';
import { FileContent } from './file-content.entity';
import { FileDeletion } from './file-deletion.entity';
import { FileFields } from './file-fields';
import { FileRefusals, REFUSAL_WINDOW_MS } from './file-refusals';
import { UPLOADS_PATH, downloadRoute, uploadRoute } from './file-routes';
import { FileUrls } from './file-urls';
import { FileVariant } from './file-variant.entity';
import { registerFilesCommands } from './files.cli';
import { FileResolver, GeneratedFiles, VARIANT_NAMES, filesRules, generateFileFields } from './files.schema';
import { FilesService } from './files.service';
import { FILES_SETTINGS } from './files.settings';
import { checkFileTriggers, pruneOrphanContents, pruneStoreDeletions } from './files-upkeep';
import { STORABLE_TYPES } from './content-sniffer';
import { canDecode } from './image-processor';
import { PostgresChunkStore } from './postgres-chunk-store';
import { S3ChunkStore } from './s3-chunk-store';
import type { StorageTarget } from './storage-url';
import { StoredFile } from './stored-file.entity';
import { UploadsService } from './uploads.service';
import { Upload } from './upload.entity';

/** The services this feature provides. */
export interface FilesServices {
  /** Every file field of the served models (every feature's data models). */
  readonly fileFields: FileFields;
  /** The stores file contents are in, and their encryption. */
  readonly fileContents: Contents;
  readonly files: FilesService;
  readonly uploads: UploadsService;
  readonly fileRefusals: FileRefusals;
  /** File contents as data under the keys: `bastion keys status` and `reencrypt` find it among the services. */
  readonly fileKeys: ContentKeys;
}

declare module '../feature' {
  interface Services extends FilesServices {}
}

const ENTITIES = [FileContent, FileChunk, StoredFile, FileVariant, Upload, FileDeletion];

/** A model's file fields, checked once: types this server can take, variants it can make. */
function checkFileFields(models: readonly ModelDefinition[]): void {
  for (const model of models)
    for (const field of model.files) {
      const where = `Model ${model.name}: file field "${field.name}"`;
      for (const variant of field.variants)
        if (!VARIANT_NAMES.includes(variant)) throw new Error(`${where}: unknown variant "${variant}" (${VARIANT_NAMES.join(', ')})`);
      for (const type of field.types) {
        if (!STORABLE_TYPES.has(type))
          throw new Error(
            `${where}: "${type}" is not a type this server can tell from the bytes, or is markup (${[...STORABLE_TYPES].join(', ')})`,
          );
        if (type.startsWith('image/') && !canDecode(type) && !field.keepMetadata)
          throw new Error(
            `${where}: ${type} cannot be re-encoded by this server's image library (so its metadata could not be stripped): ` +
              'remove it, or set keepMetadata: true to store such images as uploaded',
          );
      }
    }
}

function storeFor(storage: StorageTarget, dataSource: DataSource): ChunkStore {
  return storage.kind === 's3' ? new S3ChunkStore(storage) : new PostgresChunkStore(dataSource);
}

/**
 * Files on models' fields: resumable uploads (tus), the type read from the bytes, images
 * re-encoded without their metadata, contents encrypted in chunks in PostgreSQL or an
 * S3-compatible bucket, downloads by short-lived signed URL. It serves the file fields of every
 * data model the process runs; their GraphQL parts come from `fileFieldsFeatures`.
 */
export const filesFeature = defineFeature<keyof FilesServices>()({
  name: 'files',
  settings: FILES_SETTINGS,
  entities: ENTITIES,
  needs: ['audit', 'rateLimits'],
  provides: {
    fileFields: ({ features }) => {
      const models = features.flatMap((feature) => feature.dataModels ?? []);
      checkFileFields(models);
      return new FileFields(models);
    },
    fileContents: ({ config, dataSource }) => {
      const current = storeFor(config.storage, dataSource);
      // Contents already in PostgreSQL stay readable after a move to S3 (and `bastion files migrate` moves them).
      const others = current.kind === 'postgres' ? [] : [new PostgresChunkStore(dataSource)];
      return new Contents(dataSource, new Stores(current, others), activeKeyring);
    },
    fileKeys: ({ dataSource, fileContents }) => new ContentKeys(dataSource, fileContents),
    fileRefusals: ({ logger, clock, audit, dataSource }) => new FileRefusals(logger, clock, audit, dataSource),
    files: ({ dataSource, fileContents, fileFields, clock, config }) =>
      new FilesService(dataSource, fileContents, fileFields, new FileUrls(activeKeyring, clock, config.filesUrlTtlSeconds * 1000)),
    uploads: ({ dataSource, fileContents, fileFields, fileRefusals, files, clock, config, logger }) =>
      new UploadsService(
        dataSource,
        fileContents,
        fileFields,
        files.urls,
        fileRefusals,
        clock,
        {
          accountQuotaBytes: config.filesAccountQuotaBytes,
          uploadTtlMs: config.filesUploadTtlHours * 60 * 60 * 1000,
          maxImagePixels: config.filesMaxImagePixels,
          // Half the pool at most: the rest stays for requests while a slow bucket holds these.
          storeWrites: Math.max(1, Math.floor(config.databasePoolSize / 2)),
        },
        logger,
        activeKeyring,
      ),
  },
  start: async ({ dataSource, fileFields, fileRefusals, fileContents }) => {
    await checkFileTriggers(dataSource, fileFields.tables);
    const timer = setInterval(() => void fileRefusals.flush(), REFUSAL_WINDOW_MS).unref();
    return async () => {
      clearInterval(timer);
      await fileRefusals.flush();
      await Promise.all(fileContents.stores.all.map((store) => store.close()));
    };
  },
  maintenance: ({ uploads, fileContents, clock, logger }) => ({
    expiredUploads: (manager) => uploads.deleteExpired(manager),
    orphanFileContents: (manager) => pruneOrphanContents(manager, clock),
    storeDeletions: (manager) => pruneStoreDeletions(manager, fileContents.stores, logger),
  }),
  context: ({ config }) => {
    const trust = proxyTrust(config.trustProxy, config.tlsCertFile !== undefined);
    return (request: Request) => {
      if (config.filesBaseUrl) return { filesBaseUrl: config.filesBaseUrl };
      // A subscription's context comes from its connection_init, not an HTTP request: its file URLs stay relative.
      if (!request.socket) return {};
      return { filesBaseUrl: `${trust.isSecure(request) ? 'https' : 'http'}://${request.get('host') ?? 'localhost'}` };
    };
  },
  http: ({ uploads, files, fileRefusals, rateLimits, clock, logger, config }) => {
    const corsOrigins = new Set(config.corsOrigins);
    const limit = rateLimits ? [rateLimitGate(rateLimits)] : [];
    return {
      mounts: {
        [UPLOADS_PATH]: [
          ...limit,
          uploadRoute(uploads, files.urls, fileRefusals, logger, {
            maxUploadsPerAccount: config.filesMaxUploadsPerAccount,
            maxUploadsPerAddress: config.filesMaxUploadsPerAddress,
            allowsOrigin: (origin) => corsOrigins.has(origin),
          }),
        ],
        '/files': [...limit, downloadRoute(files, fileRefusals, clock, logger)],
      },
    };
  },
  commands: registerFilesCommands,
});

/**
 * The GraphQL parts of file fields: the File type, `removeFile`, and for each model its file
 * fields and `start<Model><Field>Upload`. Generated once for every model (type-graphql's metadata
 * is global); the function returned assembles a feature serving the chosen models' (nothing when
 * none has file fields).
 */
export function fileFieldsFeatures(models: readonly ModelDefinition[]): (served: readonly ModelDefinition[]) => Feature {
  const generated = new Map<ModelDefinition, GeneratedFiles>(
    models.filter((model) => model.files.length > 0).map((model) => [model, generateFileFields(model)]),
  );
  return (served) => {
    const chosen = served.flatMap((model) => generated.get(model) ?? []);
    return defineFeature()({
      name: 'file-fields',
      needs: ['files', 'uploads'],
      resolvers: chosen.length > 0 ? [FileResolver, ...chosen.map((entry) => entry.resolver)] : [],
      rules: chosen.length > 0 ? filesRules(chosen) : {},
      wire: ({ files, uploads }) =>
        chosen.length > 0 ? [new FileResolver(files), ...chosen.map((entry) => new entry.resolver(files, uploads))] : [],
    });
  };
}
