export { AppError, PublicDetails, SERVICE_UNAVAILABLE_MESSAGE, isAppError, serviceUnavailable } from './app-error';
export { ERROR_CODES, ErrorCode, isErrorCode } from './error-codes';
export { MAX_RESPONSE_ERRORS, errorCapPlugin } from './error-cap.plugin';
export { MASKED_MESSAGE, TIMEOUT_MESSAGE, formatClientError, isDependencyFailure, isPublicError, isTimeoutFailure } from './format-error';
