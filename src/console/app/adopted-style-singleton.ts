import { useEffect } from 'react';

/**
 * react-style-singleton's API (used by GraphiQL's dialogs, through react-remove-scroll, to lock the
 * page's scrolling), with the styles in a constructed stylesheet adopted by the document instead
 * of a `<style>` element, which the pages' policy (style-src 'self') refuses. The build puts it in
 * the package's place (bin/build-console.js); the semantics are the package's: the styles are in
 * force while at least one user is mounted.
 */

export function stylesheetSingleton(): { add(style: string): void; remove(): void } {
  let users = 0;
  let sheet: CSSStyleSheet | null = null;
  return {
    add(style) {
      if (users === 0) {
        sheet = new CSSStyleSheet();
        sheet.replaceSync(style);
        document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
      }
      users += 1;
    },
    remove() {
      users -= 1;
      if (users === 0 && sheet) {
        const adopted = sheet;
        document.adoptedStyleSheets = document.adoptedStyleSheets.filter((candidate) => candidate !== adopted);
        sheet = null;
      }
    },
  };
}

export function styleHookSingleton(): (styles: string, isDynamic?: boolean) => void {
  const sheet = stylesheetSingleton();
  return (styles, isDynamic) => {
    useEffect(() => {
      sheet.add(styles);
      return () => sheet.remove();
      // As the package: the styles are taken once, or again when dynamic ones change.
    }, [styles && isDynamic]);
  };
}

export function styleSingleton(): (props: { styles: string; dynamic?: boolean }) => null {
  const useStyle = styleHookSingleton();
  return ({ styles, dynamic }) => {
    useStyle(styles, dynamic);
    return null;
  };
}
