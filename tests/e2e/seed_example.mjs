// SPDX-License-Identifier: ISC
// Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
// The server way, as an app's Node 20 backend would call it.
// Usage: node seed_example.mjs URL API_KEY CLIENT_ID EMAIL
// Prints the status and whether "data" is null, e.g. "201 true".
const [url, key, client, email] = process.argv.slice(2);

const res = await fetch(url, {
  method: 'POST',
  headers: {
    'Content-Type': 'application/json',
    'X-API-KEY': key,
    'X-CLIENT-ID': client,
    'X-API-KEY-TYPE': 'write',
  },
  body: JSON.stringify({ email, language: 'en' }),
});
const body = await res.json();
console.log(res.status, body.data === null);
