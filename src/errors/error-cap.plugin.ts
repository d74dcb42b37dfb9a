import type { ApolloServerPlugin } from '@apollo/server';

/** The most errors one response carries; the rest are dropped (the log still has every masked one). */
export const MAX_RESPONSE_ERRORS = 5;

/**
 * Keeps the first MAX_RESPONSE_ERRORS errors of a response. graphql-js reports every mistake it
 * finds, up to a hundred validation errors and one per failing field, so a document made of
 * mistakes answered with a page of them: work and bytes for the sender, and what scanners count
 * as overloading. An app acts on the first error; five leave room to fix several at once.
 * Incremental delivery (@defer) is not served by graphql 16, so only single results are cut.
 */
export function errorCapPlugin(): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { errors } = response.body.singleResult;
          if (errors && errors.length > MAX_RESPONSE_ERRORS)
            response.body.singleResult = { ...response.body.singleResult, errors: errors.slice(0, MAX_RESPONSE_ERRORS) };
        },
      };
    },
  };
}
