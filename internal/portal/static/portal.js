// zerogrid portal: the WebAuthn calls. The server builds every challenge;
// this script only hands it to the authenticator and returns the answer.
"use strict";

const b64u = {
  enc(buf) {
    const b = new Uint8Array(buf);
    let s = "";
    for (const c of b) s += String.fromCharCode(c);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
  dec(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  },
};

function csrf() {
  return document.getElementById("main").dataset.csrf || "";
}

function say(msg, isError) {
  const el = document.getElementById("status");
  el.textContent = msg;
  el.className = isError ? "error" : "";
}

async function post(url, body) {
  const r = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await r.json().catch(() => ({ error: "the portal answered " + r.status }));
  if (!r.ok) throw new Error(data.error || "refused (" + r.status + ")");
  return data;
}

async function assert(pk) {
  const opts = {
    challenge: b64u.dec(pk.challenge),
    rpId: pk.rpId,
    timeout: pk.timeout,
    userVerification: "required",
    allowCredentials: (pk.allowCredentials || []).map((c) => ({ type: c.type, id: b64u.dec(c.id) })),
  };
  const cred = await navigator.credentials.get({ publicKey: opts });
  const r = cred.response;
  return {
    id: cred.id,
    rawId: b64u.enc(cred.rawId),
    type: cred.type,
    response: {
      authenticatorData: b64u.enc(r.authenticatorData),
      clientDataJSON: b64u.enc(r.clientDataJSON),
      signature: b64u.enc(r.signature),
      userHandle: r.userHandle ? b64u.enc(r.userHandle) : undefined,
    },
  };
}

async function create(pk) {
  const opts = Object.assign({}, pk, {
    challenge: b64u.dec(pk.challenge),
    user: Object.assign({}, pk.user, { id: b64u.dec(pk.user.id) }),
    excludeCredentials: (pk.excludeCredentials || []).map((c) => ({ type: c.type, id: b64u.dec(c.id) })),
  });
  const cred = await navigator.credentials.create({ publicKey: opts });
  const r = cred.response;
  return {
    id: cred.id,
    rawId: b64u.enc(cred.rawId),
    type: cred.type,
    response: {
      attestationObject: b64u.enc(r.attestationObject),
      clientDataJSON: b64u.enc(r.clientDataJSON),
      transports: r.getTransports ? r.getTransports() : [],
    },
  };
}

// sign runs a signing flow: each answer may bring the next challenge (a
// deployment is signed, then its transaction) until the server redirects.
async function sign(flow) {
  let step = await post("/api/sign/start", { flow });
  for (;;) {
    say("Confirm with your passkey…");
    const credential = await assert(step.publicKey);
    say("Sending to the ledger…");
    step = await post("/api/sign/step", { flow: step.flow, credential });
    if (step.redirect) {
      location.assign(step.redirect);
      return;
    }
  }
}

async function register(twin, name) {
  const begin = await post("/api/register/begin", { twin, name });
  say("Create the passkey on your authenticator…");
  const credential = await create(begin.publicKey);
  return post("/api/register/finish", { flow: begin.flow, credential });
}

function on(id, event, fn) {
  const el = document.getElementById(id);
  if (!el) return;
  el.addEventListener(event, async (e) => {
    e.preventDefault();
    try {
      await fn(el);
    } catch (err) {
      say(err.message || String(err), true);
    }
  });
}

on("signin-form", "submit", async () => {
  const twin = document.getElementById("twin").value.trim();
  const begin = await post("/api/signin/begin", { twin });
  say("Confirm with your passkey…");
  const credential = await assert(begin.publicKey);
  const done = await post("/api/signin/finish", { flow: begin.flow, credential });
  location.assign(done.redirect);
});

on("register-form", "submit", async () => {
  const twin = document.getElementById("twin").value.trim();
  const reg = await register(twin, document.getElementById("name").value);
  document.getElementById("register-command").textContent = reg.command;
  document.getElementById("register-next").hidden = false;
  say("");
  const poll = async () => {
    const r = await fetch("/api/register/status?twin=" + encodeURIComponent(reg.twin) + "&cred=" + reg.credential);
    const s = await r.json();
    if (s.registered) {
      document.getElementById("register-wait").textContent = "Registered. You can sign in now.";
      say("Registered.");
      return;
    }
    setTimeout(poll, 1000);
  };
  poll();
});

on("sign", "click", (el) => sign(el.dataset.flow));

on("add-passkey", "click", async () => {
  const twin = document.querySelector(".who").textContent.replace(/\D/g, "");
  const reg = await register(twin, "passkey");
  const started = await post("/devices/add", { token: reg.token });
  await sign(started.flow);
});

on("approve-request", "click", async () => {
  const twin = document.getElementById("twin").value.trim();
  if (!twin) throw new Error("Enter your twin number first.");
  const req = await post("/api/login/request", { twin });
  document.getElementById("number").textContent = String(req.number);
  document.getElementById("approve-command").textContent = req.command;
  document.getElementById("approve-box").hidden = false;
  say("Waiting for your approval…");
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    const r = await post("/api/login/poll", { id: req.id, poll: req.poll });
    if (r.approved) {
      location.assign(r.redirect);
      return;
    }
  }
});
