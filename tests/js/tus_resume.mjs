// A resumable upload with the unmodified tus-js-client: the connection is cut once a first MiB
// has gone through it (by a proxy between client and server, so the cut never depends on
// timing), the server is asked how much it kept, and the upload resumes from there (not from
// zero). The file downloaded afterwards must be the one uploaded, byte for byte. Then an upload
// without credentials, through a signed upload URL.
// Usage: node tus_resume.mjs BASE_URL ACCESS_TOKEN
import { createHash } from 'node:crypto';
import net from 'node:net';
import * as tus from 'tus-js-client';

const [base, token] = process.argv.slice(2);
const headers = { Authorization: `Bearer ${token}` };
const size = 64 * 1024 * 1024;
const data = Buffer.alloc(size);
for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 9)) & 255;
const metadata = { filename: 'big.bin', filetype: 'application/octet-stream', bucket: 'default' };

function check(condition, message) {
  if (!condition) {
    console.error(`FAILED: ${message}`);
    process.exit(1);
  }
}

async function offsetOf(url) {
  const resp = await fetch(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
  return { status: resp.status, offset: Number(resp.headers.get('upload-offset')) };
}

// A TCP proxy to the server that destroys the first connection over which the client has sent
// `cutAfter` bytes, both ways at once, as a dropped network would. Later connections pass.
async function cuttingProxy(cutAfter) {
  const target = new URL(base);
  let cut = false;
  const proxy = net.createServer((client) => {
    const server = net.connect(Number(target.port), target.hostname);
    let sent = 0;
    client.on('data', (chunk) => {
      sent += chunk.length;
      if (!cut && sent >= cutAfter) {
        cut = true;
        client.destroy();
        server.destroy();
      }
    });
    client.pipe(server);
    server.pipe(client);
    client.on('error', () => server.destroy());
    server.on('error', () => client.destroy());
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  proxy.unref();
  return `http://127.0.0.1:${proxy.address().port}`;
}

// Starts an upload through a fresh cutting proxy and returns its URL on the server itself,
// once the cut has failed it.
async function cutUpload() {
  const via = await cuttingProxy(1024 * 1024);
  const url = await new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${via}/api/v1/storage/resumable`, headers, metadata, uploadSize: size, retryDelays: null,
      onError: () => resolve(upload.url),
      onSuccess: () => reject(new Error('the upload finished although its connection was cut')),
    });
    upload.start();
  });
  check(url && url.includes('/api/v1/storage/resumable/'), `an upload URL: ${url}`);
  return new URL(new URL(url, base).pathname, base).toString();
}

// 1. Start through the proxy, which kills the connection once a first MiB has been sent.
const absolute = await cutUpload();

// 2. The server reports how much it kept.
const kept = await offsetOf(absolute);
check(kept.status === 200, `HEAD answers 200 (got ${kept.status})`);
// What the server kept is what it read before the connection died; bytes still in its socket
// buffer when the client reset the connection are lost, so this may even be 0 (the Rust test
// that cuts a PATCH by hand checks the exact count).
check(kept.offset >= 0 && kept.offset < size, `the upload is unfinished (offset ${kept.offset} of ${size})`);

// 3. Resume: the first PATCH starts where the server stopped, not from the start.
const patchOffsets = [];
const fileId = await new Promise((resolve, reject) => {
  const upload = new tus.Upload(data, {
    uploadUrl: absolute, headers, metadata, uploadSize: size, retryDelays: null,
    onBeforeRequest(req) {
      if (req.getMethod() === 'PATCH') patchOffsets.push(Number(req.getHeader('Upload-Offset')));
    },
    onError: reject,
    onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('Ferrobase-File-Id')),
  });
  upload.start();
});
check(patchOffsets[0] === kept.offset, `the upload resumed at ${kept.offset} (PATCH offsets ${patchOffsets})`);
check(fileId, 'the last answer names the file');

// 4. The file is the one uploaded.
const download = await fetch(`${base}/api/v1/storage/${fileId}`, { headers });
check(download.status === 200, `the file downloads (got ${download.status})`);
const got = Buffer.from(await download.arrayBuffer());
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');
check(got.length === size && sha(got) === sha(data), `the downloaded file is the uploaded one (${got.length} bytes)`);

// 5. Termination: an upload cut off and then abandoned is gone.
const abandoned = await cutUpload();
check((await offsetOf(abandoned)).status === 200, 'the abandoned upload exists before it is terminated');
await tus.Upload.terminate(abandoned, { headers });
const gone = await offsetOf(abandoned);
check(gone.status === 404, `a terminated upload is gone (HEAD answered ${gone.status})`);

// 6. A signed upload URL: the client has no credentials at all, and every request after the
// first goes to the Location the server gave, whose token lets it go on.
const signed = await fetch(`${base}/api/v1/storage/sign`, {
  method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify({}),
});
check(signed.status === 200, `the upload URL is signed (got ${signed.status})`);
const { resumable_url: resumableUrl } = await signed.json();
const small = data.subarray(0, 3 * 1024 * 1024);
const signedFileId = await new Promise((resolve, reject) => {
  const upload = new tus.Upload(small, {
    endpoint: `${base}${resumableUrl}`, metadata, uploadSize: small.length, chunkSize: 1024 * 1024, retryDelays: null,
    onError: reject,
    onSuccess: ({ lastResponse }) => resolve(lastResponse.getHeader('Ferrobase-File-Id')),
  });
  upload.start();
});
const signedDownload = await fetch(`${base}/api/v1/storage/${signedFileId}`, { headers });
const signedBytes = Buffer.from(await signedDownload.arrayBuffer());
check(signedDownload.status === 200 && sha(signedBytes) === sha(small), 'the signed upload is the signer\'s file, whole');
console.log('ok');
