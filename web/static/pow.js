// Solves the node's proof-of-work challenge (docs/API.md, "Proof-of-work
// challenge") off the page's thread: finds n with
// hex(SHA-256(salt + n)) == challenge, in batches, reporting progress.
const enc = new TextEncoder();

function hex(buf) {
  const b = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

self.onmessage = async (ev) => {
  const { salt, challenge, maxnumber } = ev.data;
  const batch = 2000;
  for (let start = 0; start <= maxnumber; start += batch) {
    const end = Math.min(maxnumber, start + batch - 1);
    const jobs = [];
    for (let n = start; n <= end; n++) jobs.push(crypto.subtle.digest('SHA-256', enc.encode(salt + n)));
    const sums = await Promise.all(jobs);
    for (let i = 0; i < sums.length; i++) {
      if (hex(sums[i]) === challenge) {
        self.postMessage({ done: true, number: start + i });
        return;
      }
    }
    self.postMessage({ progress: end / maxnumber });
  }
  self.postMessage({ done: true, number: -1 });
};
