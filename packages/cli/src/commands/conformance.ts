/**
 * `kvmsim conformance`: run the shared conformance suite (@kvmsim/conformance) against the
 * backends this CLI ships — the reference backend and x86 (TDP MMU, SMM, shadow MMU, nested TDP) —
 * without a test framework, and print a results table. `--zoo` instead turns each bug of the zoo
 * on in turn and reports which case caught it; a bug no case catches fails the run.
 */
import { type Command } from 'commander';
import { createVm, type CreateVmOptions } from '@kvmsim/kvm-core';
import { referenceBackend } from '@kvmsim/kvm-core/testing';
import {
  BUG_ZOO,
  CASE_GROUP_IDS,
  archSelected,
  runCases,
  replayCases,
  runReplayCases,
  runFailed,
  runZoo,
  selectCases,
  writeFourLevelTables,
  type CaseGroupId,
  type CaseResult,
  type ConformanceOptions,
  type ConformanceVmOptions,
  type GuestPagingAdapter,
  type ReplayCaseResult,
  type ZooResult,
} from '@kvmsim/conformance/runner';
import { kernelOracleTarget, modelTarget, probeKernelOracle, type ReplayTarget } from '@kvmsim/conformance/targets';
import { PT_PRESENT, PT_RW, x86Backend, type X86ArchVm, type X86Faults, type X86Options } from '@kvmsim/x86';
import { EXIT, UsageError, type CommandContext } from '../context.js';
import { renderTable, writeJson, writeLine, type OutputSink } from '../output.js';
import { startProgress } from '../progress.js';

const STORES = ['scalable', 'legacy'] as const;
/** Exit status when `--target kernel` cannot run here (as `kvmsim diff`). */
export const CONFORMANCE_EXIT_UNAVAILABLE = 4;
type Store = (typeof STORES)[number];

/** x86 guest paging for the cases about guest page tables: 4-level tables, CR3, a guest-virtual load. */
export const X86_GUEST_PAGING: GuestPagingAdapter = {
  map(kvm, vcpu, tablesGpa, gva, gpa) {
    writeFourLevelTables(kvm, tablesGpa, gva, gpa, PT_PRESENT | PT_RW);
    (kvm.arch as X86ArchVm).setGuestCr3(vcpu, tablesGpa);
  },
  read(kvm, vcpu, gva) {
    const r = (kvm.arch as X86ArchVm).guestRead(vcpu, gva, 8);
    return r.exit === 'guest-fault' ? { exit: 'guest-fault' } : r;
  },
};

function vmOptions(o: ConformanceVmOptions): Omit<CreateVmOptions, 'backend'> {
  const { archFaults: _ignored, ...rest } = o;
  return rest;
}

function x86Config(name: string, options: X86Options, extra: Partial<ConformanceOptions>): ConformanceOptions {
  return {
    name,
    createVm: (o) => createVm({ backend: x86Backend({ ...options, faults: { ...(o.archFaults as X86Faults | undefined) } }), ...vmOptions(o) }),
    ...extra,
  };
}

/**
 * The configurations `--arch` selects from. Each x86 configuration declares the x86 fault
 * switches it can show (the zoo runs an x86 bug only there) and, where it has guest paging, the adapter.
 */
export function conformanceConfigs(): ConformanceOptions[] {
  return [
    { name: 'reference/x86', createVm: (o) => createVm({ backend: referenceBackend({ record: false }), ...vmOptions(o) }), expectations: { slotZapScope: 'slot' } },
    { name: 'reference/generic', createVm: (o) => createVm({ backend: referenceBackend({ record: false, profile: 'generic' }), ...vmOptions(o) }) },
    x86Config('x86/tdp', {}, { archFaults: ['mmioCachedWhileInFlux', 'agingFreedRoot'], guestPaging: X86_GUEST_PAGING }),
    x86Config('x86/tdp+smm', { smm: true, quirks: { slotZapAll: false } }, { archFaults: ['mmioCachedWhileInFlux', 'mmioWrapOnlyAs0'], expectations: { slotZapScope: 'slot' } }),
    x86Config('x86/shadow', { mmu: 'shadow' }, { archFaults: ['mmioCachedWhileInFlux'], guestPaging: X86_GUEST_PAGING }),
    x86Config('x86/shadow+nested', { mmu: 'shadow', nestedTdp: true, quirks: { slotZapAll: false } }, { archFaults: ['slotZapMissesShadowedGptes'], guestPaging: X86_GUEST_PAGING, expectations: { slotZapScope: 'slot' } }),
  ];
}

/** `--arch`: configuration names or their architecture prefix (`x86` = every `x86/…`). */
function selectConfigs(all: readonly ConformanceOptions[], names: readonly string[]): ConformanceOptions[] {
  const byArch = all.filter((c) => archSelected(c.name.split('/')[0]!));
  if (names.length === 0) return byArch;
  const out: ConformanceOptions[] = [];
  for (const n of names) {
    const hit = byArch.filter((c) => c.name === n || c.name.startsWith(`${n}/`));
    if (hit.length === 0) throw new UsageError(`--arch: '${n}' names no configuration (valid: ${all.map((c) => c.name).join(', ')}, or an architecture: reference, x86)`, 'conformance');
    for (const c of hit) if (!out.includes(c)) out.push(c);
  }
  return out;
}

function list(value: string, previous: string[] = []): string[] {
  const out = [...previous];
  for (const raw of value.split(',')) {
    const v = raw.trim();
    if (v !== '' && !out.includes(v)) out.push(v);
  }
  return out;
}

export interface ConformanceCommandOptions {
  arch?: string[];
  group?: string[];
  store?: string[];
  zoo?: boolean;
  bug?: string[];
  replay?: boolean;
  target?: string;
  quick?: boolean;
  list?: boolean;
  json?: boolean;
}

/** Register `conformance` on the program. */
export function registerConformanceCommand(program: Command, ctx: CommandContext): Command {
  return program
    .command('conformance')
    .summary('run the shared conformance suite on the built-in backends, or the bug zoo')
    .description(
      'Run @kvmsim/conformance — memslot ABI, hook order, lookups, dirty log, notifier, aging, guest-visible\n' +
        'semantics, interleavings (explore) and a model-based random test — against the reference backend\n' +
        'and the x86 configurations, each on both memslot stores. With --zoo, turn each bug of the zoo on in\n' +
        'turn (a fault-injection switch in the package where the bug lives) and report which case caught it.',
    )
    .option('--arch <names>', 'configurations or architectures to run (comma-separated, repeatable): reference, x86, x86/tdp, x86/tdp+smm, x86/shadow, x86/shadow+nested, reference/x86, reference/generic', list)
    .option('--group <ids>', `case groups to run (comma-separated): ${CASE_GROUP_IDS.join(', ')}`, list)
    .option('--store <designs>', 'memslot stores (comma-separated): scalable, legacy (default: both)', list)
    .option('--quick', 'reduced effort: fewer model-based runs and a smaller explore budget')
    .option('--zoo', 'run the bug zoo instead of the suite')
    .option('--bug <ids>', 'with --zoo: only these bugs (comma-separated; see --list)', list)
    .option('--replay', 'run the replay groups (ABI with Linux 6.18.44\'s answers, guest-visible) against a replay target instead')
    .option('--target <target>', 'with --replay: model (x86/tdp, the default) or kernel (tools/kvm-oracle on /dev/kvm)')
    .option('--list', 'list the configurations, the case groups and the zoo, and exit')
    .option('--json', 'print one JSON object instead of tables')
    .addHelpText(
      'after',
      `
ARCHES=x86,arm64 in the environment narrows the configurations to those architectures.

Output: a table per run on stdout — per configuration and store: cases passed, failed, skipped,
known divergences and fixed divergences — then each failure with its case id, kernel rule and
message. With --zoo: one row per bug (switch, package, status, catching case). A progress bar is
drawn on stderr when it is a terminal and --json is not given.

Exit status:
  0  every case passed (--zoo: every bug was caught)
  1  a case failed or a known divergence passed (--zoo: a bug went uncaught)
  2  usage error (unknown configuration, group, store or bug)
  3  internal error (a bug in kvmsim)
  4  --replay --target kernel: the kernel target is unavailable here

Examples:
  kvmsim conformance --arch x86/tdp --group guest-visible
  kvmsim conformance --arch reference --json
  kvmsim conformance --zoo
  kvmsim conformance --zoo --bug missing-retry-check
  kvmsim conformance --replay --target kernel`,
    )
    .action(async (options: ConformanceCommandOptions) => {
      ctx.setExitCode(await runConformance(options, ctx));
    });
}

/** Run `kvmsim conformance`; returns the exit status. */
export async function runConformance(options: ConformanceCommandOptions, ctx: CommandContext): Promise<number> {
  const { io } = ctx;
  const json = options.json === true;
  const all = conformanceConfigs();
  if (options.list === true) {
    writeCatalogue(io.stdout, all, json);
    return EXIT.OK;
  }
  const configs = selectConfigs(all, options.arch ?? []);
  const groups = options.group?.map((g) => {
    if (!(CASE_GROUP_IDS as readonly string[]).includes(g)) throw new UsageError(`--group: unknown group '${g}' (valid: ${CASE_GROUP_IDS.join(', ')})`, 'conformance');
    return g as CaseGroupId;
  });
  const stores = options.store?.map((s) => {
    if (!(STORES as readonly string[]).includes(s)) throw new UsageError(`--store: unknown memslot store '${s}' (valid: ${STORES.join(', ')})`, 'conformance');
    return s as Store;
  });
  if (options.zoo === true) return runZooCommand(options, configs, ctx);
  if (options.bug !== undefined) throw new UsageError('--bug needs --zoo', 'conformance');
  if (options.replay === true) return runReplayCommand(options, ctx);
  if (options.target !== undefined) throw new UsageError('--target needs --replay', 'conformance');

  const cases = selectCases(groups ? { groups } : {});
  const storeList = stores ?? STORES;
  const progress = startProgress(io.stderr, { total: configs.length * storeList.length * cases.length, enabled: !json });
  const results: CaseResult[] = [];
  try {
    for (const config of configs) {
      results.push(
        ...(await runCases(config, {
          ...(groups ? { groups } : {}),
          stores: storeList,
          quick: options.quick === true,
          onCaseStart: (c, store) => progress.update(results.length, `${config.name} ${store} ${c.id}`),
          onResult: () => progress.update(results.length + 1),
        })),
      );
    }
  } finally {
    progress.stop();
  }
  const exitCode = runFailed(results) ? EXIT.DISAGREE : EXIT.OK;
  if (json) {
    writeJson(io.stdout, {
      kind: 'kvmsim-conformance-result',
      configs: configs.map((c) => c.name),
      stores: [...storeList],
      groups: groups ?? [...CASE_GROUP_IDS],
      results: results.map((r) => ({ ...r, ms: Math.round(r.ms) })),
      summary: tally(results),
      exitCode,
    });
  } else {
    writeSuiteReport(io.stdout, results);
  }
  return exitCode;
}

function tally(results: readonly CaseResult[]): Record<CaseResult['status'], number> {
  const t = { passed: 0, failed: 0, skipped: 0, 'known-divergence': 0, 'divergence-fixed': 0 };
  for (const r of results) t[r.status]++;
  return t;
}

function maxWidth(sink: OutputSink): { maxWidth?: number } {
  return sink.isTTY === true && sink.columns !== undefined ? { maxWidth: sink.columns } : {};
}

function writeSuiteReport(stdout: OutputSink, results: readonly CaseResult[]): void {
  const keys = [...new Set(results.map((r) => `${r.config}\u0000${r.store}`))];
  writeLine(stdout, 'kvmsim conformance');
  writeLine(
    stdout,
    renderTable({
      head: ['configuration', 'store', 'passed', 'failed', 'skipped', 'known divergences', 'fixed divergences'],
      rows: keys.map((k) => {
        const [config, store] = k.split('\u0000') as [string, string];
        const t = tally(results.filter((r) => r.config === config && r.store === store));
        return [config, store, String(t.passed), String(t.failed), String(t.skipped), String(t['known-divergence']), String(t['divergence-fixed'])];
      }),
      align: ['left', 'left', 'right', 'right', 'right', 'right', 'right'],
      ...maxWidth(stdout),
    }),
  );
  const bad = results.filter((r) => r.status === 'failed' || r.status === 'divergence-fixed');
  for (const r of bad) {
    writeLine(stdout);
    writeLine(stdout, `${r.status === 'failed' ? 'FAILED' : 'DIVERGENCE FIXED'}: ${r.config} (${r.store}) ${r.id} — ${r.title}`);
    writeLine(stdout, `  checks: ${r.see}`);
    for (const line of (r.error ?? '').split('\n').slice(0, 12)) writeLine(stdout, `  ${line}`);
  }
  const t = tally(results);
  writeLine(stdout);
  writeLine(stdout, `${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped (gated out by capabilities), ${t['known-divergence']} known divergences, ${t['divergence-fixed']} fixed divergences`);
}

async function runZooCommand(options: ConformanceCommandOptions, configs: readonly ConformanceOptions[], ctx: CommandContext): Promise<number> {
  const { io } = ctx;
  const json = options.json === true;
  const ids = BUG_ZOO.map((b) => b.id);
  for (const b of options.bug ?? []) {
    if (!ids.includes(b)) throw new UsageError(`--bug: unknown bug '${b}' (valid: ${ids.join(', ')})`, 'conformance');
  }
  const bugs = options.bug ?? ids;
  const progress = startProgress(io.stderr, { total: bugs.length, enabled: !json });
  let done = 0;
  let results: ZooResult[];
  try {
    results = await runZoo(configs, {
      bugs,
      onRun: (bug, config) => {
        done = bugs.indexOf(bug.id);
        progress.update(done, `${bug.id} on ${config}`);
      },
    });
  } finally {
    progress.stop();
  }
  const uncaught = results.filter((r) => r.status === 'uncaught');
  const exitCode = uncaught.length > 0 ? EXIT.DISAGREE : EXIT.OK;
  if (json) {
    writeJson(io.stdout, {
      kind: 'kvmsim-conformance-zoo',
      configs: configs.map((c) => c.name),
      bugs: results.map((r) => ({
        id: r.bug.id,
        title: r.bug.title,
        kind: r.bug.kind,
        switch: r.bug.switch,
        package: r.bug.package,
        fix: r.bug.fix,
        note: r.bug.note,
        status: r.status,
        caughtBy: r.caughtBy,
        runs: r.runs,
      })),
      caught: results.filter((r) => r.status === 'caught').length,
      uncaught: uncaught.length,
      unsupported: results.filter((r) => r.status === 'unsupported').length,
      exitCode,
    });
    return exitCode;
  }
  writeLine(io.stdout, `kvmsim conformance --zoo — ${results.length} bugs on ${configs.map((c) => c.name).join(', ')}`);
  writeLine(
    io.stdout,
    renderTable({
      head: ['bug', 'switch', 'package', 'caught by', 'status'],
      rows: results.map((r) => [
        r.bug.title,
        `${r.bug.switch.scope}:${r.bug.switch.name}`,
        r.bug.package,
        r.caughtBy.length > 0 ? r.caughtBy.join(', ') : '—',
        r.status === 'caught' ? `caught (${r.runs.filter((x) => x.status === 'caught').map((x) => x.config).join(', ')})` : r.status.toUpperCase(),
      ]),
      ...maxWidth(io.stdout),
    }),
  );
  for (const r of results.filter((x) => x.status !== 'caught')) {
    writeLine(io.stdout);
    writeLine(io.stdout, `${r.status.toUpperCase()}: ${r.bug.id} (${r.bug.switch.name})`);
    for (const run of r.runs) writeLine(io.stdout, `  ${run.config} (${run.store}): ${run.status}${run.reason ? ` — ${run.reason}` : ''}${run.status === 'missed' ? ` after ${run.cases} cases` : ''}`);
    if (r.runs.length === 0) writeLine(io.stdout, '  no selected configuration declares the switch');
  }
  writeLine(io.stdout);
  writeLine(io.stdout, `${results.filter((r) => r.status === 'caught').length} caught, ${uncaught.length} uncaught, ${results.filter((r) => r.status === 'unsupported').length} not run (no configuration supports the switch)`);
  return exitCode;
}

function writeCatalogue(out: OutputSink, configs: readonly ConformanceOptions[], json: boolean): void {
  const groups = CASE_GROUP_IDS.map((g) => ({ id: g, cases: selectCases({ groups: [g] }).map((c) => ({ id: c.id, title: c.title, see: c.see })) }));
  const bugs = BUG_ZOO.map((b) => ({ id: b.id, title: b.title, switch: b.switch, package: b.package, fix: b.fix }));
  if (json) {
    writeJson(out, { kind: 'kvmsim-conformance-list', configs: configs.map((c) => ({ name: c.name, archFaults: c.archFaults ?? [] })), groups, bugs });
    return;
  }
  writeLine(out, 'Configurations:');
  writeLine(out, renderTable({ head: ['name', 'x86 fault switches'], rows: configs.map((c) => [c.name, (c.archFaults ?? []).join(', ') || '—']), ...maxWidth(out) }));
  writeLine(out, 'Case groups:');
  writeLine(out, renderTable({ head: ['group', 'cases'], rows: groups.map((g) => [g.id, String(g.cases.length)]), align: ['left', 'right'] }));
  writeLine(out, 'Bug zoo:');
  writeLine(out, renderTable({ head: ['bug', 'switch', 'package'], rows: bugs.map((b) => [b.id, `${b.switch.scope}:${b.switch.name}`, b.package]), ...maxWidth(out) }));
}

/** `--replay`: the ABI and guest-visible groups as replay lines, against the model or the kernel. */
async function runReplayCommand(options: ConformanceCommandOptions, ctx: CommandContext): Promise<number> {
  const { io } = ctx;
  const json = options.json === true;
  const target = options.target ?? 'model';
  if (target !== 'model' && target !== 'kernel') throw new UsageError(`--target: '${target}' is not a replay target (valid: model, kernel)`, 'conformance');
  let name = 'model x86/tdp';
  let createTarget = (): Promise<ReplayTarget> => Promise.resolve(modelTarget({ backend: x86Backend(), name }));
  if (target === 'kernel') {
    const probe = probeKernelOracle();
    if (!probe.ok) {
      if (json) writeJson(io.stdout, { kind: 'kvmsim-conformance-replay', target: 'kernel', unavailable: probe.reason, exitCode: CONFORMANCE_EXIT_UNAVAILABLE });
      else writeLine(io.stderr, `kvmsim conformance: the kernel target is unavailable here: ${probe.reason}`);
      return CONFORMANCE_EXIT_UNAVAILABLE;
    }
    name = `kernel ${probe.release}`;
    createTarget = async () => {
      const t = await kernelOracleTarget();
      if ('unavailable' in t) throw new Error(`kernel target unavailable: ${t.unavailable}`);
      return t;
    };
  }
  const groups = (options.group ?? ['abi', 'guest-visible']).map((g) => {
    if (g !== 'abi' && g !== 'guest-visible') throw new UsageError(`--group with --replay: '${g}' is not a replay group (valid: abi, guest-visible)`, 'conformance');
    return g;
  });
  const progress = startProgress(io.stderr, { total: replayCases(groups).length, enabled: !json, label: name });
  const results: ReplayCaseResult[] = [];
  try {
    await runReplayCases({ name, createTarget, groups }, (r) => {
      results.push(r);
      progress.update(results.length, r.id);
    });
  } finally {
    progress.stop();
  }
  const failed = results.filter((r) => r.status === 'failed' || r.status === 'divergence-fixed');
  const exitCode = failed.length > 0 ? EXIT.DISAGREE : EXIT.OK;
  if (json) {
    writeJson(io.stdout, { kind: 'kvmsim-conformance-replay', target: name, groups, results, passed: results.length - failed.length, failed: failed.length, exitCode });
    return exitCode;
  }
  writeLine(io.stdout, `kvmsim conformance --replay — ${name}`);
  writeLine(
    io.stdout,
    renderTable({
      head: ['group', 'cases', 'passed', 'failed'],
      rows: groups.map((g) => {
        const rs = results.filter((r) => r.group === g);
        return [g, String(rs.length), String(rs.filter((r) => r.status === 'passed').length), String(rs.filter((r) => r.status === 'failed').length)];
      }),
      align: ['left', 'right', 'right', 'right'],
    }),
  );
  for (const r of failed) {
    writeLine(io.stdout);
    writeLine(io.stdout, `FAILED: ${r.id} — ${r.title}`);
    for (const line of (r.error ?? '').split('\n')) writeLine(io.stdout, `  ${line}`);
  }
  return exitCode;
}
