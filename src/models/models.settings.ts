import type { SettingValues, SettingsTable } from '../config';
import { boolean, spec } from '../config/settings';

const specs = {
  sampleModels: spec<boolean>({
    env: 'BASTION_SAMPLE_MODELS',
    description:
      'Serve the sample models Profile, Post and Comment (their API and default grants). Their tables exist either way (migrations); ' +
      'off, nothing reaches them and no grant on them is seeded. Your own models in src/models are served regardless.',
    fallback: (nodeEnv) => nodeEnv !== 'production',
    defaultText: 'true; false in production',
    parse: boolean,
  }),
};

declare module '../config/config' {
  interface Config extends SettingValues<typeof specs> {}
}

/** Whether the sample models are part of this server's API. */
export const MODELS_SETTINGS: SettingsTable = { specs };
