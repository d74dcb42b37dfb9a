import { Init1795708725000 } from './1795708725000-Init';
import { EncryptionKeys1795709547291 } from './1795709547291-EncryptionKeys';
import { Accounts1795710901563 } from './1795710901563-Accounts';
import { Mfa1795714061315 } from './1795714061315-Mfa';
import { AccessControl1795716977632 } from './1795716977632-AccessControl';
import { Firewall1795719040962 } from './1795719040962-Firewall';
import { SampleModels1795719598889 } from './1795719598889-SampleModels';
import { RateLimits1795719826343 } from './1795719826343-RateLimits';
import { Backups1795724529338 } from './1795724529338-Backups';
import { AuditChainKey1796540710795 } from './1796540710795-AuditChainKey';
import { RuntimeRole1796581020003 } from './1796581020003-RuntimeRole';
import { Realtime1796900000000 } from './1796900000000-Realtime';
import { Files1797000000000 } from './1797000000000-Files';

/**
 * Every migration in order, listed explicitly so tests (TypeScript) and the server (compiled)
 * load the same set. `bastion migrate generate <Name>` appends to this list.
 */
export const MIGRATIONS: Function[] = [Init1795708725000, EncryptionKeys1795709547291, Accounts1795710901563, Mfa1795714061315, AccessControl1795716977632, Firewall1795719040962, SampleModels1795719598889, RateLimits1795719826343, Backups1795724529338, AuditChainKey1796540710795, RuntimeRole1796581020003, Realtime1796900000000, Files1797000000000];
