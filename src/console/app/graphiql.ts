import type { Fetcher, FetcherParams } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';

/**
 * GraphiQL, bundled (React inside this one chunk, loaded when the explorer opens). Its requests
 * go to /graphql with the console session's token, added here and never shown in its headers
 * editor; what it would keep in localStorage (tabs, history) it keeps in memory instead.
 */

/** A Storage that forgets everything with the page, as the console's session does. */
class MemoryStorage implements Storage {
  private readonly items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  clear(): void {
    this.items.clear();
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
}

const DEFAULT_QUERY = `# The GraphQL API, as this admin session sees it. Documentation: the book icon.
query Me {
  me { id email roles mfaEnabled }
  serverInfo { name version serverTime }
}
`;

/**
 * Mounts the explorer into `element`, its requests sent by `send` (the session's, which adds and
 * refreshes the token); the function returned unmounts it. Each mount keeps its own memory, so a
 * later session in the same tab starts with none of this one's tabs or history.
 */
export function mountExplorer(element: HTMLElement, send: (body: FetcherParams) => Promise<unknown>): () => void {
  const fetcher: Fetcher = async (params: FetcherParams) => (await send(params)) as Awaited<ReturnType<Fetcher>>;
  const root = createRoot(element);
  root.render(
    createElement(GraphiQL, {
      fetcher,
      storage: new MemoryStorage(),
      defaultQuery: DEFAULT_QUERY,
      shouldPersistHeaders: false,
      isHeadersEditorEnabled: false,
    }),
  );
  return () => root.unmount();
}
