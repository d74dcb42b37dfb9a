import type { ModelDefinition, ModelFileField } from '../data/define-model';

/** A file field of a model, with the model it belongs to. */
export interface FileField {
  readonly model: ModelDefinition;
  readonly field: ModelFileField;
}

/** Every file field of these models, by (table, field): how uploads and stored files find their declaration. */
export class FileFields {
  readonly all: readonly FileField[];
  private readonly byTable = new Map<string, FileField>();

  constructor(models: readonly ModelDefinition[]) {
    this.all = models.flatMap((model) => model.files.map((field) => ({ model, field })));
    for (const entry of this.all) this.byTable.set(`${entry.model.table}.${entry.field.name}`, entry);
  }

  of(table: string, field: string): FileField | undefined {
    return this.byTable.get(`${table}.${field}`);
  }

  /** The tables that need the files trigger. */
  get tables(): string[] {
    return [...new Set(this.all.map((entry) => entry.model.table))];
  }
}
