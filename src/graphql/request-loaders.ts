import DataLoader from 'dataloader';

/**
 * The DataLoaders of one request: a field resolved for many objects of a page (a user's roles,
 * a post's author) becomes one query per page instead of one per object. Loaders live as long
 * as the request, so nothing is cached across viewers.
 */
export class RequestLoaders {
  private readonly loaders = new Map<string, DataLoader<unknown, unknown>>();

  /** The request's loader named `name`, created on first use from `batch` (which returns one value per key, in key order). */
  get<K, V>(name: string, batch: (keys: readonly K[]) => Promise<V[]>): DataLoader<K, V> {
    let loader = this.loaders.get(name) as DataLoader<K, V> | undefined;
    if (!loader) {
      loader = new DataLoader<K, V>(batch, { maxBatchSize: 1000 });
      this.loaders.set(name, loader);
    }
    return loader;
  }
}
