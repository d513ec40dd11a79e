#!/usr/bin/env node
// The `dfs` command: runs the compiled CLI (npm run build puts it in dist/).
import '../dist/cli/main.js';
