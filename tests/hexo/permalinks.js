// Prints, as JSON, every post the Hexo site in the current directory publishes:
// its source file, its permalink and its path (run with NODE_PATH at the installed Hexo).
const Hexo = require('hexo');
const hexo = new Hexo(process.cwd(), { silent: true });
hexo.init()
  .then(() => hexo.load())
  .then(() => {
    const posts = hexo.locals.get('posts').map(p => ({ source: p.source, permalink: p.permalink, path: p.path }));
    process.stdout.write(JSON.stringify(posts));
  })
  .catch(err => { console.error(err); process.exit(1); });
