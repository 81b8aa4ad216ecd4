#!/usr/bin/env node
// A committed launcher, so pnpm links the lbctl bin at install time, before dist/ is built.
import '../dist/main.js';
