import { Length, Max, Min } from 'class-validator';
import { Arg, Ctx, Field, FieldResolver, ID, InputType, Int, Mutation, ObjectType, Resolver, Root, registerEnumType } from 'type-graphql';
import { isAuthenticated } from '../accounts/viewer';
import type { Context } from '../context';
import type { ModelDefinition, ModelFileField } from '../data/define-model';
import { valuesOf } from '../data/model-reader';
import { defineMethod, namedClass } from '../graphql/generated-classes';
import { type RuleTree } from '../shield/shield';
import { isPublic, syncRule } from '../shield/rules';
import { FileView } from './file-view';
import type { FilesService } from './files.service';
import type { UploadsService } from './uploads.service';

/** Which rendition of a file a URL serves. */
export enum FileVariantValue {
  ORIGINAL = 'ORIGINAL',
  THUMB_256 = 'THUMB_256',
  MEDIUM_1024 = 'MEDIUM_1024',
}
registerEnumType(FileVariantValue, {
  name: 'FileVariant',
  description: 'A rendition of a file. Variants exist for images only, and only those the field declares.',
  valuesConfig: {
    ORIGINAL: { description: 'The file as stored (an image re-encoded, without its metadata).' },
    THUMB_256: { description: 'An image fitted inside 256×256 pixels.' },
    MEDIUM_1024: { description: 'An image fitted inside 1024×1024 pixels.' },
  },
});

/** The variant names a field may declare. */
export const VARIANT_NAMES: readonly string[] = Object.values(FileVariantValue).filter((name) => name !== FileVariantValue.ORIGINAL);

/** The request context's origin for file URLs (BASTION_FILES_BASE_URL, or this request's own). */
declare module '../context' {
  interface Context {
    readonly filesBaseUrl?: string;
  }
}

@InputType({ description: 'The file about to be uploaded, as the app knows it.' })
export class StartUploadInput {
  @Field(() => Int, { description: 'Its size in bytes: the tus Upload-Length must be the same.' })
  @Min(0)
  @Max(2 ** 31 - 1)
  byteSize!: number;

  @Field({ description: 'Its content type as the app believes it (image/jpeg…). The server reads the real one from the bytes.' })
  @Length(1, 255)
  contentType!: string;
}

@ObjectType({ description: 'An upload in progress: send the file to `url` with a tus client (or one PATCH for a small file).' })
export class FileUpload {
  @Field(() => ID, { description: 'The upload.' })
  id!: string;

  @Field({
    description:
      'Where to send the bytes, with the tus protocol (creation, then PATCH): give it to TUSKit or tus-android-client as the upload ' +
      'creation URL. It needs no bearer token: it is bound to this upload and works until expiresAt.',
  })
  url!: string;

  @Field({ description: 'When the upload is discarded if its last byte has not arrived.' })
  expiresAt!: Date;
}

/** The `File` type's fields and the removal of one; both only for files the viewer reached through a field it may read. */
@Resolver(() => FileView)
export class FileResolver {
  constructor(private readonly files: FilesService) {}

  @FieldResolver(() => String, {
    nullable: true,
    description:
      'A signed URL for this file (default ORIGINAL) that works without the bearer token for a few minutes, for image loaders ' +
      '(Kingfisher, Coil, Glide). Ask again for a fresh one. Null for a variant this file does not have (a PDF has no THUMB_256).',
  })
  url(
    @Root() file: FileView,
    @Arg('variant', () => FileVariantValue, { defaultValue: FileVariantValue.ORIGINAL, description: 'Which rendition.' }) variant: string,
  ): string | null {
    return this.files.urlOf(file, variant);
  }

  @Mutation(() => Boolean, {
    description: 'Removes a file from its row. Needs update on the row and write on its field, as attaching does. NOT_FOUND otherwise.',
  })
  async removeFile(@Arg('id', () => ID, { description: "The file's id." }) id: string, @Ctx() context: Context): Promise<boolean> {
    await this.files.remove(context, id);
    return true;
  }
}

/** What the files feature adds to a model's type and mutations, generated per model with file fields. */
export interface GeneratedFiles {
  readonly model: ModelDefinition;
  readonly resolver: new (files: FilesService, uploads: UploadsService) => object;
  readonly mutations: readonly { readonly name: string; readonly field: ModelFileField }[];
}

function capitalize(name: string): string {
  return name[0].toUpperCase() + name.slice(1);
}

/**
 * For one model: each file field on its type (read through the row's field rule, which the data
 * API generated with the model's other fields) and `start<Model><Field>Upload(id, input)`.
 */
export function generateFileFields(model: ModelDefinition): GeneratedFiles {
  const generated = namedClass(`${model.name}FilesResolver`, FilesFieldResolver);
  const mutations: { name: string; field: ModelFileField }[] = [];
  for (const field of model.files) {
    defineMethod(
      generated,
      field.name,
      async function (this: FilesFieldResolver, row: object, context: Context) {
        // The row's stored values: its id is always read, selected or not.
        const files = await this.files.filesOf(context, model, field, String(valuesOf(row).id), context.filesBaseUrl ?? '');
        return field.multiple ? files : (files[files.length - 1] ?? null);
      },
      FieldResolver(() => (field.multiple ? [FileView] : FileView), { nullable: true, description: field.description }),
      [Root(), Ctx()],
    );
    const name = `start${model.name}${capitalize(field.name)}Upload`;
    const what = field.multiple
      ? `of one more of ${model.name}.${field.name} (up to ${field.maxFiles})`
      : `for ${model.name}.${field.name} (it replaces the current one)`;
    mutations.push({ name, field });
    defineMethod(
      generated,
      name,
      async function (this: FilesFieldResolver, id: string, input: StartUploadInput, context: Context) {
        const started = await this.uploads.start(
          context,
          { model, field },
          { rowId: id, byteSize: input.byteSize, contentType: input.contentType },
        );
        return Object.assign(new FileUpload(), {
          id: started.id,
          url: `${context.filesBaseUrl ?? ''}${started.path}`,
          expiresAt: started.expiresAt,
        });
      },
      Mutation(() => FileUpload, {
        description:
          `Starts an upload ${what}: ` +
          `${field.types.join(', ')}, up to ${field.maxBytes} bytes. Needs update on the ${model.name} and write on ${field.name}. ` +
          'The file is attached when its last byte arrives and its checks pass.',
      }),
      [
        Arg('id', () => ID, { description: `The ${model.name}'s id.` }),
        Arg('input', () => StartUploadInput, { description: 'The file.' }),
        Ctx(),
      ],
    );
  }
  Resolver(() => model.entity)(generated);
  return { model, resolver: generated, mutations };
}

class FilesFieldResolver {
  constructor(
    readonly files: FilesService,
    readonly uploads: UploadsService,
  ) {}
}

/** A File reached only through a file field the viewer may read (its row rule decided): its fields follow. */
const isReadableFile = syncRule('isReadableFile', (parent) => parent instanceof FileView);
/** Starting an upload needs a signed-in viewer who may update some row of the model (the row and the field are checked by the service). */
const canStartUpload = (model: string) =>
  syncRule(`canStartUpload:${model}`, (_parent, _args, context) =>
    context.viewer.userId === null ? false : context.access.check(model, 'update'),
  );

/** The rules of the files feature's types and mutations (the file fields themselves are ruled with their models). */
export function filesRules(generated: readonly GeneratedFiles[]): RuleTree {
  const mutations = Object.fromEntries(
    generated.flatMap(({ model, mutations: names }) => {
      const rule = canStartUpload(model.name);
      return names.map(({ name }) => [name, rule]);
    }),
  );
  return {
    Mutation: { ...mutations, removeFile: isAuthenticated },
    File: {
      id: isReadableFile,
      contentType: isReadableFile,
      byteSize: isReadableFile,
      sha256: isReadableFile,
      createdAt: isReadableFile,
      url: isReadableFile,
    },
    // Only the caller of a start…Upload mutation, which its own rule guards, ever holds one.
    FileUpload: { id: isPublic, url: isPublic, expiresAt: isPublic },
  };
}
