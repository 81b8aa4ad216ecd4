/**
 * Prints one closing line, `N passed, N failed[, N skipped]`, after vitest's own report, so CI
 * (which reads that plain line) sees the counts of unit and end-to-end tests together.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  private line = '';

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of modules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
    }
    this.line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
  }

  // The default reporter prints its summary after onTestRunEnd; print ours last.
  onFinished(): void {
    if (this.line !== '') process.stdout.write(`${this.line}\n`);
  }
}
