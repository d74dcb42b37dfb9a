export { AppError, PublicDetails, SERVICE_UNAVAILABLE_MESSAGE, isAppError, serviceUnavailable } from './app-error';
export { ERROR_CODES, ErrorCode, isErrorCode } from './error-codes';
export { MAX_RESPONSE_ERRORS, errorCapPlugin } from './error-cap.plugin';
export { MASKED_MESSAGE, formatClientError, isDependencyFailure, isPublicError } from './format-error';
