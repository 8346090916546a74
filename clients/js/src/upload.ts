// sendFile's upload, with progress: XMLHttpRequest where there is one (a
// browser: its upload events are the only progress a page can see), else
// fetch with the multipart body streamed in slices (Node.js), progress
// counted as the slices are handed to the connection.

import { GatewayError, errorFrom } from './errors.js';

export interface UploadRequest {
  url: string;
  headers: Record<string, string>;
  form: FormData;
  onProgress?: ((progress: number) => void) | undefined;
  signal: AbortSignal;
  fetch: typeof fetch;
}

const SLICE = 64 << 10;

export async function upload(req: UploadRequest): Promise<unknown> {
  if (typeof XMLHttpRequest === 'function') return viaXHR(req);
  return viaFetch(req);
}

function viaXHR(req: UploadRequest): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const onAbort = () => xhr.abort();
    req.signal.addEventListener('abort', onAbort, { once: true });
    const done = () => req.signal.removeEventListener('abort', onAbort);
    if (req.onProgress) {
      const cb = req.onProgress;
      xhr.upload.onprogress = (e) => {
        if (e.lengthComputable && e.total > 0) cb(e.loaded / e.total);
      };
    }
    xhr.onload = () => {
      done();
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(errorFrom(xhr.status, body, xhr.getResponseHeader('Retry-After')));
    };
    xhr.onerror = () => {
      done();
      reject(new GatewayError('CONNECTION_LOST', 'the gateway cannot be reached'));
    };
    xhr.onabort = () => {
      done();
      reject(new GatewayError('CANCELLED', 'the upload was cancelled'));
    };
    xhr.open('POST', req.url);
    for (const [k, v] of Object.entries(req.headers)) xhr.setRequestHeader(k, v);
    xhr.send(req.form);
  });
}

async function viaFetch(req: UploadRequest): Promise<unknown> {
  // The form's multipart encoding, with its boundary, as fetch would send it.
  const encoded = new Response(req.form);
  const type = encoded.headers.get('Content-Type') ?? 'multipart/form-data';
  const bytes = new Uint8Array(await encoded.arrayBuffer());
  const total = bytes.length;
  let sent = 0;
  const cb = req.onProgress;
  const body = new ReadableStream<Uint8Array>({
    pull(ctl) {
      if (sent >= total) {
        ctl.close();
        return;
      }
      const n = Math.min(SLICE, total - sent);
      ctl.enqueue(bytes.subarray(sent, sent + n));
      sent += n;
      if (cb) cb(sent / total);
    },
  });
  let res: Response;
  try {
    res = await req.fetch(req.url, {
      method: 'POST',
      headers: { ...req.headers, 'Content-Type': type, 'Content-Length': String(total) },
      body,
      signal: req.signal,
      // Node's fetch needs it for a stream body.
      duplex: 'half',
    } as RequestInit);
  } catch (e) {
    if (req.signal.aborted) throw new GatewayError('CANCELLED', 'the upload was cancelled');
    throw new GatewayError('CONNECTION_LOST', 'the gateway cannot be reached: ' + String(e));
  }
  let out: unknown = null;
  try {
    out = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) throw errorFrom(res.status, out, res.headers.get('Retry-After'));
  return out;
}
