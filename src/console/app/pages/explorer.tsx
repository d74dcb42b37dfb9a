import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorText, Page, PageProps } from '../ui';

/** GraphiQL, bundled with the console: works offline, as this admin session (introspection is for admins). */
export function Explorer({ session }: PageProps) {
  const host = useRef<HTMLDivElement>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let unmount: (() => void) | null = null;
    let current = true;
    import('../graphiql').then(
      ({ mountExplorer }) => {
        if (current && host.current) unmount = mountExplorer(host.current, (body) => session.send(body));
      },
      (failure: unknown) => setError(failure),
    );
    return () => {
      current = false;
      unmount?.();
    };
  }, [session]);
  return (
    <Page
      title="Explorer"
      intro={
        'Run queries and mutations against this server as your admin session. Everything here is served by Bastion itself: ' +
        'it works without internet, unlike the Apollo Sandbox at /graphql.'
      }
    >
      <ErrorText error={error} />
      <div class="explorer" ref={host} />
    </Page>
  );
}
