import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';
import type { Session } from './session';

/** What a page was lent: the session it acts as. */
export interface PageProps {
  readonly session: Session;
}

/** An error as a person reads it: the server's message, with its code for searching the docs. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error instanceof Error ? error.message : String(error);
}

export function ErrorText({ error }: { readonly error: unknown }) {
  if (error === null || error === undefined) return null;
  return (
    <p class="error" role="alert">
      {messageOf(error)}
    </p>
  );
}

export interface Loaded<T> {
  readonly data: T | null;
  readonly error: unknown;
  readonly loading: boolean;
  readonly reload: () => void;
}

/**
 * Runs `load` now and whenever `reload` is called or `key` changes. A reload keeps the last answer
 * while the next one comes (a refresh does not flash); a new key drops it at once, so an answer to
 * other conditions (a search, a page) is never shown as if it were this key's.
 */
export function useLoad<T>(load: () => Promise<T>, key: string = ''): Loaded<T> {
  // The last answer, with the key it answers.
  const [answer, setAnswer] = useState<{ readonly key: string; readonly data: T | null; readonly error: unknown }>({
    key,
    data: null,
    error: null,
  });
  const [loading, setLoading] = useState(true);
  const [round, setRound] = useState(0);
  useEffect(() => {
    let current = true;
    setLoading(true);
    load().then(
      (value) => {
        if (!current) return;
        setAnswer({ key, data: value, error: null });
        setLoading(false);
      },
      (failure: unknown) => {
        if (!current) return;
        setAnswer((last) => ({ key, data: last.key === key ? last.data : null, error: failure }));
        setLoading(false);
      },
    );
    return () => {
      current = false;
    };
    // `load` is a new closure each render: `key` and `round` say when to run it.
  }, [key, round]);
  const reload = useCallback(() => setRound((value) => value + 1), []);
  const answered = answer.key === key;
  return { data: answered ? answer.data : null, error: answered ? answer.error : null, loading: loading || !answered, reload };
}

/** A button that runs an action, shows it is busy, and shows its error beside it; `done` follows a success. */
export function ActionButton(props: {
  readonly label: string;
  readonly run: () => Promise<unknown>;
  readonly done?: () => void;
  readonly confirm?: string;
  readonly kind?: 'primary' | 'danger' | 'plain';
  readonly name?: string;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const onClick = async () => {
    if (props.confirm && !window.confirm(props.confirm)) return;
    setBusy(true);
    setError(null);
    try {
      await props.run();
      props.done?.();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={props.kind ?? 'plain'} disabled={busy} onClick={() => void onClick()} name={props.name}>
        {busy ? `${props.label}…` : props.label}
      </button>
      <ErrorText error={error} />
    </span>
  );
}

/** A page's frame: its title, what it is for, and its body. */
export function Page(props: { readonly title: string; readonly intro?: string; readonly children: ComponentChildren }) {
  return (
    <section class="page">
      <h1>{props.title}</h1>
      {props.intro ? <p class="intro">{props.intro}</p> : null}
      {props.children}
    </section>
  );
}

/** A moment as this browser's locale writes it, in UTC as the server keeps it. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { timeZone: 'UTC', dateStyle: 'medium', timeStyle: 'medium' }) + ' UTC';
}

/** The status chip of a check or a backup. */
export function Status({ value }: { readonly value: string }) {
  return <span class={`status status-${value.toLowerCase()}`}>{value}</span>;
}

/** A form field's text, trimmed ('' when missing or not text). */
export function textOf(form: FormData, name: string): string {
  return secretOf(form, name).trim();
}

/** A form field's text exactly as typed (a password, whose spaces count). */
export function secretOf(form: FormData, name: string): string {
  const value = form.get(name);
  return typeof value === 'string' ? value : '';
}

/** The data of the form an event came from. */
export function formOf(event: Event): FormData {
  return new FormData(event.currentTarget as HTMLFormElement);
}

/** A form's submission: busy while it runs, its error kept for ErrorText, `run` given the form's data. */
export function useSubmit(run: (form: FormData, element: HTMLFormElement) => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const onSubmit = async (event: Event) => {
    event.preventDefault();
    const element = event.currentTarget as HTMLFormElement;
    setBusy(true);
    setError(null);
    try {
      await run(new FormData(element), element);
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, onSubmit: (event: Event) => void onSubmit(event) };
}

/** A datetime-local input's value (this browser's local time, no zone) as an ISO moment in UTC; undefined when empty or invalid. */
export function localToIso(value: string): string | undefined {
  if (!value) return undefined;
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? undefined : moment.toISOString();
}

/** A table's head: one header cell per column; `actions` adds a last column for buttons, named for screen readers only. */
export function Columns(props: { readonly names: readonly string[]; readonly actions?: boolean }) {
  return (
    <thead>
      <tr>
        {props.names.map((name) => (
          <th>{name}</th>
        ))}
        {props.actions ? (
          <th>
            <span class="visually-hidden">Actions</span>
          </th>
        ) : null}
      </tr>
    </thead>
  );
}

/** Where a list walked by cursors stands: `after` is the page's cursor (null: the first), `page` counts from 1. */
export interface CursorPages {
  readonly after: string | null;
  readonly page: number;
  /** To the page after the one shown, given its pageInfo.endCursor. */
  readonly next: (endCursor: string) => void;
  readonly previous: () => void;
  /** Back to the first page (new conditions). */
  readonly reset: () => void;
}

/** The cursors of the pages walked so far, as a stack: "Previous page" goes back the way it came. */
export function useCursorPages(): CursorPages {
  const [cursors, setCursors] = useState<readonly (string | null)[]>([null]);
  // A second click before the page changed asks for the same page: it is not stacked twice.
  const next = useCallback((endCursor: string) => setCursors((all) => (all[all.length - 1] === endCursor ? all : [...all, endCursor])), []);
  const previous = useCallback(() => setCursors((all) => (all.length > 1 ? all.slice(0, -1) : all)), []);
  const reset = useCallback(() => setCursors((all) => (all.length === 1 ? all : [null])), []);
  return { after: cursors[cursors.length - 1], page: cursors.length, next, previous, reset };
}
