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

const storage = new MemoryStorage();

const DEFAULT_QUERY = `# The GraphQL API, as this admin session sees it. Documentation: the book icon.
query Me {
  me { id email roles mfaEnabled }
  serverInfo { name version serverTime }
}
`;

/** Mounts the explorer into `element`; the function returned unmounts it. */
export function mountExplorer(element: HTMLElement, accessToken: () => Promise<string>): () => void {
  const fetcher: Fetcher = async (params: FetcherParams) => {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await accessToken()}` },
      body: JSON.stringify(params),
      credentials: 'omit',
      cache: 'no-store',
    });
    return (await response.json()) as Awaited<ReturnType<Fetcher>>;
  };
  const root = createRoot(element);
  root.render(
    createElement(GraphiQL, { fetcher, storage, defaultQuery: DEFAULT_QUERY, shouldPersistHeaders: false, isHeadersEditorEnabled: false }),
  );
  return () => root.unmount();
}
