// A resumable upload with the unmodified tus-js-client: the connection is cut once the client
// reports a first MiB sent (its progress events come at most every 100 ms), the server is asked how much it kept, and the upload resumes from there (not
// from zero). The file downloaded afterwards must be the one uploaded, byte for byte.
// Usage: node tus_resume.mjs BASE_URL ACCESS_TOKEN
import { createHash } from 'node:crypto';
import * as tus from 'tus-js-client';

const [base, token] = process.argv.slice(2);
const endpoint = `${base}/api/v1/storage/resumable`;
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

// 1. Start, and kill the connection once a first MiB has been sent.
const uploadUrl = await new Promise((resolve, reject) => {
  let cut = false;
  const upload = new tus.Upload(data, {
    endpoint, headers, metadata, uploadSize: size, retryDelays: null,
    onProgress(sent) {
      if (!cut && sent >= 1024 * 1024) {
        cut = true;
        upload.abort(false).then(() => resolve(upload.url), reject);
      }
    },
    onError: reject,
    onSuccess: () => reject(new Error('the upload finished before it was cut')),
  });
  upload.start();
});
check(uploadUrl && uploadUrl.includes('/api/v1/storage/resumable/'), `an upload URL: ${uploadUrl}`);
const absolute = new URL(uploadUrl, base).toString();

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

// 5. Termination: an abandoned upload is gone.
const abandoned = await new Promise((resolve, reject) => {
  let cut = false;
  const upload = new tus.Upload(data, {
    endpoint, headers, metadata, uploadSize: size, retryDelays: null,
    onProgress(sent) {
      if (!cut && sent > 0) {
        cut = true;
        const url = upload.url;
        upload.abort(true).then(() => resolve(url), reject);
      }
    },
    onError: reject,
  });
  upload.start();
});
const gone = await offsetOf(new URL(abandoned, base).toString());
check(gone.status === 404, `a terminated upload is gone (HEAD answered ${gone.status})`);
console.log('ok');
