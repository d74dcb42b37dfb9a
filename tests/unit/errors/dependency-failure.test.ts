import { GraphQLError, GraphQLFormattedError, locatedError } from 'graphql';
import { QueryFailedError, QueryRunnerAlreadyReleasedError } from 'typeorm';
import { isDatabaseUnavailable } from '../../../src/db/database-unavailable';
import { AppError, formatClientError, isDependencyFailure } from '../../../src/errors';

/** What graphql-js does with a value thrown in a resolver (an Error, or anything else). */
const thrownInResolver = (thrown: unknown): GraphQLError => locatedError(thrown, undefined, ['field']);
const formattedOf = (error: GraphQLError): GraphQLFormattedError => error.toJSON();
const pgError = (message: string, code?: string) => Object.assign(new Error(message), code ? { code, severity: 'FATAL' } : {});

describe('isDatabaseUnavailable', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED', syscall: 'connect' })],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['a server shut down by its operator (57P01)', pgError('terminating connection due to administrator command', '57P01')],
    ['a server starting up or shutting down (57P03)', pgError('the database system is shutting down', '57P03')],
    ['a connection exception (08006)', pgError('connection failure', '08006')],
    ['no connection slot free (53300)', pgError('sorry, too many clients already', '53300')],
    ['a database closed to connections', pgError('database "app" is not currently accepting connections', '55000')],
    ['a connection pg saw die', new Error('Connection terminated unexpectedly')],
    ['a pool that could not connect in time', new Error('timeout exceeded when trying to connect')],
    ['a transaction whose connection TypeORM released after it failed', new QueryRunnerAlreadyReleasedError()],
    [
      'a query TypeORM saw fail that way',
      new QueryFailedError('SELECT 1', [], pgError('terminating connection due to administrator command', '57P01')),
    ],
    ['a non-Error value (another realm) carrying a socket code', { errno: -111, code: 'ECONNREFUSED', syscall: 'connect' }],
    [
      'a cause that is one',
      new Error('loading the policy failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }),
    ],
  ])('recognises %s', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
    expect(isDatabaseUnavailable(thrownInResolver(error).originalError)).toBe(true);
  });

  it.each([
    ['an SQL error', new QueryFailedError('SELECT x FROM nowhere', [], pgError('relation "nowhere" does not exist', '42P01'))],
    ['a unique violation', pgError('duplicate key value violates unique constraint', '23505')],
    ['another 55000', pgError('currval of sequence "s" is not yet defined in this session', '55000')],
    ['a bug', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a value that is no error', 'connection terminated'],
    ['nothing', undefined],
  ])('does not take %s for one', (_name, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });

  it('stops at a cycle of causes', () => {
    const looped: Error & { cause?: unknown } = new Error('a');
    looped.cause = looped;
    expect(isDatabaseUnavailable(looped)).toBe(false);
  });
});

describe('formatClientError on a dependency failure', () => {
  it('answers SERVICE_UNAVAILABLE from the catalogue, with no driver text', () => {
    const error = thrownInResolver(pgError('the database system is shutting down', '57P03'));
    expect(isDependencyFailure(error)).toBe(true);
    expect(formatClientError(formattedOf(error), error)).toEqual({
      message: 'The service is temporarily unavailable; retry shortly.',
      path: ['field'],
      extensions: { code: 'SERVICE_UNAVAILABLE' },
    });
  });

  it('leaves an AppError as it is, even one caused by an outage', () => {
    const error = thrownInResolver(new AppError('NOT_FOUND', 'No such post.', { cause: pgError('connection failure', '08006') }));
    expect(isDependencyFailure(error)).toBe(false);
    expect(formatClientError(formattedOf(error), error)).toEqual({
      message: 'No such post.',
      path: ['field'],
      extensions: { code: 'NOT_FOUND' },
    });
  });
});
