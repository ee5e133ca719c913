// End-to-end check of Ferrobase's tables surface with the unmodified @supabase/postgrest-js
// client. Usage: node postgrest.mjs <tables base URL> <admin token>
// (or FERROBASE_TABLES_URL and FERROBASE_TOKEN). Expects the tables `authors (id, name)` and
// `books (id, title UNIQUE, author_id → authors, pages, tags json)` to exist and be empty.
// Exits non-zero on the first failed check.
import assert from 'node:assert/strict';
import { PostgrestClient } from '@supabase/postgrest-js';

const url = process.argv[2] ?? process.env.FERROBASE_TABLES_URL;
const token = process.argv[3] ?? process.env.FERROBASE_TOKEN;
if (!url || !token) {
  console.error('usage: node postgrest.mjs <tables base URL> <admin token>');
  process.exit(2);
}

const db = new PostgrestClient(url, { headers: { Authorization: `Bearer ${token}` } });
const anon = new PostgrestClient(url);

function ok(res, what) {
  if (res.error) {
    throw new Error(`${what}: ${res.status} ${JSON.stringify(res.error)}`);
  }
  console.log(`ok - ${what}`);
  return res;
}

const titles = (res) => res.data.map((b) => b.title);

// Inserts: one row with .select().single(), one without, then a bulk insert.
let r = ok(await db.from('authors').insert({ name: 'ann' }).select().single(), 'insert one, single');
assert.equal(r.status, 201);
assert.equal(r.data.name, 'ann');
const ann = r.data.id;
r = ok(await db.from('authors').insert({ name: 'bob' }), 'insert one without select');
assert.equal(r.status, 201);
r = ok(
  await db
    .from('books')
    .insert([
      { title: 'a', author_id: ann, pages: 100, tags: ['x', 'y'] },
      { title: 'b', author_id: ann, pages: 250, tags: ['y'] },
      { title: 'c', pages: 50 },
      { title: 'd', pages: 400, tags: [] },
    ])
    .select(),
  'bulk insert',
);
assert.equal(r.status, 201);
assert.deepEqual(titles(r), ['a', 'b', 'c', 'd']);
assert.equal(r.data[2].tags, null);

// Filters, or, order (anonymous: read is public by default).
r = ok(await anon.from('books').select('title, pages').gte('pages', 100).order('pages', { ascending: false }), 'filter + order');
assert.deepEqual(r.data, [
  { title: 'd', pages: 400 },
  { title: 'b', pages: 250 },
  { title: 'a', pages: 100 },
]);
r = ok(await db.from('books').select('title').or('pages.lt.60,title.eq.a').order('title'), 'or');
assert.deepEqual(titles(r), ['a', 'c']);
r = ok(await db.from('books').select('title').in('title', ['a', 'b']).order('title'), 'in');
assert.deepEqual(titles(r), ['a', 'b']);
r = ok(await db.from('books').select('title').is('author_id', null).order('title'), 'is null');
assert.deepEqual(titles(r), ['c', 'd']);
r = ok(await db.from('books').select('title').not('author_id', 'is', null).order('title'), 'not is null');
assert.deepEqual(titles(r), ['a', 'b']);
r = ok(await db.from('books').select('title').contains('tags', ['y']).order('title'), 'contains');
assert.deepEqual(titles(r), ['a', 'b']);
r = ok(await db.from('books').select('title').ilike('title', 'A%'), 'ilike');
assert.deepEqual(titles(r), ['a']);
r = ok(await db.from('books').select('title').neq('title', 'a').lte('pages', 250).order('title', { ascending: false }), 'neq + lte');
assert.deepEqual(titles(r), ['c', 'b']);
r = ok(await db.from('books').select('label:title').eq('title', 'a'), 'alias');
assert.deepEqual(r.data, [{ label: 'a' }]);

// Range with an exact count; head requests.
r = ok(await db.from('books').select('*', { count: 'exact' }).order('id').range(1, 2), 'range + exact count');
assert.equal(r.count, 4);
assert.deepEqual(titles(r), ['b', 'c']);
r = ok(await db.from('books').select('*', { count: 'exact', head: true }).gt('pages', 60), 'head + count');
assert.equal(r.count, 3);
assert.equal(r.data, null);

// single() and maybeSingle().
r = await db.from('books').select('title').eq('title', 'zzz').single();
assert.equal(r.status, 406);
assert.ok(r.error);
r = ok(await db.from('books').select('title').eq('title', 'zzz').maybeSingle(), 'maybeSingle, no row');
assert.equal(r.data, null);
r = ok(await db.from('books').select('title').eq('title', 'b').single(), 'single');
assert.deepEqual(r.data, { title: 'b' });

// Upserts: merge on the primary key, ignore, and onConflict on a unique column.
const first = (await db.from('books').select('id').eq('title', 'a').single()).data.id;
r = ok(await db.from('books').upsert({ id: first, title: 'a2', pages: 101 }).select(), 'upsert merge');
assert.equal(r.data.length, 1);
assert.equal(r.data[0].title, 'a2');
assert.equal(r.data[0].author_id, ann, 'columns not given are kept');
r = ok(await db.from('books').upsert({ id: first, title: 'ignored' }, { ignoreDuplicates: true }).select(), 'upsert ignore');
assert.deepEqual(r.data, []);
r = ok(await db.from('books').upsert({ title: 'b', pages: 999 }, { onConflict: 'title' }).select(), 'upsert onConflict');
assert.equal(r.data[0].pages, 999);
r = ok(
  await db.from('books').upsert([{ title: 'e', pages: 5 }, { title: 'b', pages: 998 }], { onConflict: 'title' }).select(),
  'bulk upsert',
);
assert.equal(r.data.length, 2);

// Updates and deletes with filters.
r = ok(await db.from('books').update({ pages: 1 }).eq('title', 'c').select(), 'update + select');
assert.equal(r.data[0].pages, 1);
r = ok(await db.from('books').update({ pages: 2 }).lt('pages', 5), 'update');
assert.equal(r.status, 204);
r = await db.from('books').update({ pages: 3 });
assert.equal(r.status, 400, 'an update without a filter is refused');
assert.match(r.error.error, /filter/);
r = ok(await db.from('books').delete().eq('title', 'd').select(), 'delete + select');
assert.deepEqual(titles(r), ['d']);
r = ok(await db.from('books').delete().in('title', ['c', 'e']), 'delete');
assert.equal(r.status, 204);

// Embedded selects, both directions of the foreign key.
r = ok(await db.from('books').select('title, authors(name)').order('title'), 'embed (many-to-one)');
assert.deepEqual(r.data, [
  { title: 'a2', authors: { name: 'ann' } },
  { title: 'b', authors: { name: 'ann' } },
]);
r = ok(await db.from('authors').select('name, books(title)').order('name'), 'embed (one-to-many)');
assert.deepEqual(r.data, [
  { name: 'ann', books: [{ title: 'a2' }, { title: 'b' }] },
  { name: 'bob', books: [] },
]);

// Errors carry PostgREST's fields (what the client shows) beside Ferrobase's `error`.
r = await db.from('books').select('nope');
assert.equal(r.status, 400);
assert.match(r.error.error, /nope/);
assert.equal(r.error.message, "unknown column 'nope' in 'books'");
assert.equal(r.error.code, '42703');
assert.ok('details' in r.error && 'hint' in r.error);
r = await db.from('books').select('*').eq('nosuch', 1);
assert.equal(r.error.code, '42703');
r = await db.from('books').insert({ title: 'c', nosuch: 1 });
assert.equal(r.status, 400);
assert.equal(r.error.code, 'PGRST204');
assert.match(r.error.details, /nosuch/);
r = await anon.from('books').insert({ title: 'anonymous' });
assert.equal(r.status, 401);
assert.equal(r.error.code, '42501');
r = await db.from('books').insert({ title: 'b' });
assert.equal(r.status, 409);
assert.equal(r.error.code, '23505');
assert.match(r.error.message, /already exists/);
r = await db.from('books').select('title').eq('title', 'zzz').single();
assert.equal(r.status, 406);
assert.equal(r.error.code, 'PGRST116');
r = await db.from('nosuchtable').select();
assert.equal(r.status, 404);
assert.equal(r.error.code, '42P01');
assert.match(r.error.message, /nosuchtable/);

// Endpoints are pluralised: `author` (a table of that name) is reached as `authors` too, but a
// table's own name always wins (`books` is the table `books`).
r = ok(await db.from('author').select('name').order('name'), 'singular table by its own name');
assert.deepEqual(r.data.map((a) => a.name), ['ann']);
r = ok(await db.from('authors').select('name').order('name'), 'the exact name wins');
assert.deepEqual(r.data.map((a) => a.name), ['ann', 'bob']);

console.log('postgrest-js: every check passed');
