import { defineFeature } from '../feature';
import { SystemResolver } from './system.resolver';
import { systemRules } from './system.rules';
import { SystemService } from './system.service';

/** What any client may ask about the server: its name, version and time. */
export const systemFeature = defineFeature()({
  name: 'system',
  resolvers: [SystemResolver],
  rules: systemRules,
  wire: ({ clock }) => [new SystemResolver(new SystemService(clock))],
});
