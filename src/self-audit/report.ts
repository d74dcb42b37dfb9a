import { MEASURES } from './checks';
import type { SecurityAuditReport } from './self-audit.service';

/** The report as a terminal shows it: one block per measure, a line per check, remedies under the findings. */
export function formatReport(report: SecurityAuditReport): string {
  const lines = [
    `Bastion self-audit, ${report.ranAt.toISOString()}: ${report.passed} passed, ${report.warnings} warnings, ${report.failures} failures`,
  ];
  for (const measure of MEASURES) {
    lines.push('', measure.replace('_', ' '));
    for (const check of report.checks.filter((candidate) => candidate.measure === measure)) {
      lines.push(`  ${check.status.padEnd(4)}  ${check.id.padEnd(36)}  ${check.detail}`);
      if (check.remedy) lines.push(`${' '.repeat(44)}→ ${check.remedy}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

/** One self-contained page (no scripts, no external assets) a person would rather read. */
export function renderReportHtml(report: SecurityAuditReport): string {
  const colours = { PASS: '#1a7f37', WARN: '#9a6700', FAIL: '#cf222e' };
  const sections = MEASURES.map((measure) => {
    const rows = report.checks
      .filter((check) => check.measure === measure)
      .map(
        (check) =>
          `<tr><td><strong style="color:${colours[check.status]}">${check.status}</strong></td>` +
          `<td><code>${escapeHtml(check.id)}</code></td>` +
          `<td>${escapeHtml(check.detail)}${check.remedy ? `<br><em>→ ${escapeHtml(check.remedy)}</em>` : ''}</td></tr>`,
      )
      .join('\n');
    return `<h2>${escapeHtml(measure.replace('_', ' '))}</h2>\n<table>\n${rows}\n</table>`;
  }).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bastion self-audit ${escapeHtml(report.ranAt.toISOString())}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1f2328}
table{border-collapse:collapse;width:100%}td{border-top:1px solid #d0d7de;padding:.4rem .6rem;vertical-align:top}
td:first-child{width:4rem}h2{text-transform:capitalize;margin-top:2rem}</style></head>
<body><h1>Bastion self-audit</h1>
<p>${escapeHtml(report.ranAt.toISOString())}: <strong style="color:${colours.PASS}">${report.passed} passed</strong>,
<strong style="color:${colours.WARN}">${report.warnings} warnings</strong>,
<strong style="color:${colours.FAIL}">${report.failures} failures</strong>.</p>
${sections}
</body></html>
`;
}
