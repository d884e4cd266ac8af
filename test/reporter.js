// Mocha reporter: spec output plus one closing line "<label>: N passed, N failed[, N skipped]".
const Mocha = require('mocha');

class SpecWithSummary extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const label = (options && options.reporterOption && options.reporterOption.label) || 'mocha';
    runner.once('end', () => {
      const s = runner.stats;
      console.log(`${label}: ${s.passes} passed, ${s.failures} failed` + (s.pending ? `, ${s.pending} skipped` : ''));
    });
  }
}

module.exports = SpecWithSummary;
