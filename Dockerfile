# syntax=docker/dockerfile:1

# Bastion's production image.
#
#   docker build -t bastion .
#   docker run -e DATABASE_URL='postgres://user:password@db:5432/bastion?sslmode=verify-full' -p 4000:4000 bastion
#
# It expects DATABASE_URL: under NODE_ENV=production Bastion refuses to start the embedded
# PostgreSQL, which is for development and tests (and refuses any other setting that production
# requires but the environment lacks; secrets come from the environment or mounted files, never
# from this image). Migrations do not run at start (BASTION_MIGRATE_ON_START is false in
# production): run `node dist/src/cli.js migrate` from this image as a release step, with
# BASTION_MIGRATION_DATABASE_URL naming the schema's owner (docs/deploy.md).

FROM node:22-bookworm-slim AS build
WORKDIR /app
# The image's npm 10 ignores package.json "allowScripts" and would run every dependency's install
# script; the npm the project is developed with runs only the approved ones.
RUN npm install --global npm@11.19.1
# Only what the build reads is copied, so nothing else in the folder (.env, keys, .bastion) can
# end up in a layer even if .dockerignore misses it.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ormconfig.ts ./
COPY patches/ patches/
COPY src/ src/
COPY migrations/ migrations/
COPY tests/bench/ tests/bench/
# bin/build-if-changed.js is the build script (`npm run build`).
COPY bin/ bin/
# postinstall applies patches/; the root "prepare" script compiles dist/ and bundles the console
# (dist/console: the runtime stage needs none of the front-end packages).
RUN --mount=type=cache,target=/root/.npm npm ci

FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production
# Docker waits 10 s after SIGTERM before killing: finish in-flight requests within that.
ENV BASTION_SHUTDOWN_TIMEOUT_MS=8000
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches/ patches/
# dist/ arrives built, so no install script is needed here; the graphql-shield patch still is.
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts \
    && npx --no patch-package
COPY --from=build /app/dist/ dist/
COPY bin/ bin/
COPY schema/ schema/
# The breached-password filter: read at run time, not compiled into dist/.
COPY assets/ assets/
# The files stay owned by root: the server account can read its code but not rewrite it. Its
# one writable place is the data folder, where backup archives go (BACKUP_DIR); mount a volume
# there (and BACKUP_COPY_DIR on another disk or a remote mount).
ENV BASTION_DATA_DIR=/var/lib/bastion
RUN mkdir -p /var/lib/bastion && chown node:node /var/lib/bastion && chmod 700 /var/lib/bastion
VOLUME ["/var/lib/bastion"]
USER node
EXPOSE 4000
# slim has no curl; node's own fetch does the check, over HTTPS when Bastion terminates TLS
# (its certificate is for the public name, not 127.0.0.1, so this one local probe skips verification).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "-e", "const tls = Boolean(process.env.TLS_CERT_FILE); if (tls) process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0'; fetch((tls ? 'https' : 'http') + '://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1)).catch(() => process.exit(1))"]
# node directly, not npm: SIGTERM from `docker stop` must reach Bastion's graceful shutdown.
CMD ["node", "dist/src/cli.js", "serve"]
