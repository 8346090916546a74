// The chatio-gateway demo customer chat widget, written against
// @chatio-gateway/customer-sdk (customer-sdk.js, its browser build: the
// global ChatioGatewaySDK), the chat.io Customer SDK's API over the
// gateway, as a page on another origin would use it: ?api=http://host:port
// picks the gateway (default: this origin), ?token=T the customer token
// (default: a random one kept in localStorage). There is no REST or SSE
// code here: the package does the calls, the stream, resuming it and
// telling this tab's own actions from the other tabs'.
'use strict';

(() => {
  const MAX_FILE = 10 << 20; // the gateway's file limit
  const PEEK_DELAY = 300; // ms of quiet typing before a sneak peek goes out
  const TOKEN_KEY = 'chatio-demo-token';
  const STATE_TEXT = {
    connecting: 'Connecting…', connected: 'Connected', reconnecting: 'Reconnecting…',
    restored: 'Connection restored', disconnected: 'Disconnected', error: 'Cannot connect',
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    status: $('status'), reconnect: $('reconnect'), scroller: $('scroller'), older: $('older'),
    empty: $('empty'), list: $('messages'), typing: $('typing'), error: $('error'), form: $('composer'),
    input: $('message'), file: $('file'), upload: $('upload'), uploadLabel: $('upload-label'),
    progress: $('progress'), peek: $('peek'), docs: $('docs-link'), who: $('who'),
  };

  let errorTimer = 0; // hides the error line
  let peekTimer = 0; // debounces sneak peeks
  let peekShown = 0; // hides the "sneak peek sent" hint
  let uploadShown = 0; // hides the finished progress bar

  const params = new URLSearchParams(location.search);
  const api = apiBase(params.get('api'));
  const token = params.get('token') || storedToken();
  // The SDK's auth object: the demo's token has no customer id of its own
  // (the gateway tells it: customer_id).
  const auth = {
    getToken: () => Promise.resolve({ accessToken: token, tokenType: 'Bearer', entityId: '' }),
    getFreshToken: () => Promise.resolve({ accessToken: token, tokenType: 'Bearer', entityId: '' }),
  };

  let sdk = null; // the SDK instance; a new one after "Reconnect"
  let connectedOnce = false;
  // The conversation shown: one chat.
  const chat = {
    id: '', me: '', starting: null,
    users: new Map(), // user id → user_data
    events: new Map(), // event id → its <li>
    pending: new Map(), // customId → <li> of a message being sent
    typing: new Set(), // user ids typing
    history: null, // the chat's getChatHistory iterator: older pages
    historyStarted: false, done: false, loadingOlder: false,
  };

  // ---- the SDK ----

  function connect() {
    if (sdk) sdk.destroy();
    ui.reconnect.hidden = true;
    setState(connectedOnce ? 'reconnecting' : 'connecting');
    sdk = ChatioGatewaySDK.init({
      gatewayUrl: api || location.origin,
      auth,
      onError: (e) => stop('error', e.message),
    });
    for (const name of Object.keys(on)) {
      sdk.on(name, (data) => {
        try { on[name](data); } catch (e) { console.warn('handling', name, e); }
      });
    }
  }

  function stop(state, detail) {
    setState(state, detail);
    ui.reconnect.hidden = false;
  }

  function setState(state, detail) {
    const text = STATE_TEXT[state] + (detail ? ': ' + detail : '');
    if (ui.status.textContent === text) return; // no repeated announcements
    ui.status.dataset.state = state;
    ui.status.textContent = text;
  }

  // on handles each SDK event by name.
  const on = {
    customer_id(id) {
      chat.me = String(id || '');
      ui.who.textContent = chat.me ? 'Customer ' + chat.me : '';
      for (const li of chat.events.values()) restyle(li);
    },
    user_data(user) {
      if (!user || !user.id) return;
      chat.users.set(user.id, user);
      for (const li of ui.list.querySelectorAll('.msg[data-author="' + CSS.escape(user.id) + '"]')) restyle(li);
      renderTyping();
    },
    connected(summary) {
      ui.reconnect.hidden = true;
      setState(connectedOnce ? 'restored' : 'connected');
      connectedOnce = true;
      resync(summary);
    },
    connection_lost() {
      setState('reconnecting');
    },
    connection_restored(summary) {
      ui.reconnect.hidden = true;
      setState('restored');
      resync(summary);
    },
    disconnected(data) {
      stop('disconnected', data && data.reason); // the stream ends; stay down until asked
    },
    new_event(data) {
      if (!data || !data.event) return;
      if (!chat.id && data.chat) openChat(data.chat); // started in another tab, or our start is in flight
      if (data.chat !== chat.id) return;
      if (chat.typing.delete(data.event.author)) renderTyping();
      addEvent(data.event, 'live');
    },
    user_is_typing(data) {
      if (!data || isMine(data.user)) return;
      if (!chat.id && data.chat) openChat(data.chat); // as new_event: the agent may type before our start returns
      if (data.chat !== chat.id) return;
      chat.typing.add(data.user);
      renderTyping();
    },
    user_stopped_typing(data) {
      if (data && data.chat === chat.id && chat.typing.delete(data.user)) renderTyping();
    },
    thread_closed(data) {
      if (data && data.chat === chat.id) addNote('The chat was closed. Write again to start a new one.');
    },
  };

  // resync follows a fresh snapshot: adopt the newest chat when none is
  // shown, else merge the newest history page (events missed while the
  // upstream was away).
  function resync(summary) {
    chat.typing.clear();
    renderTyping();
    if (chat.id) return void loadNewest();
    const list = summary && Array.isArray(summary.chatsSummary) ? summary.chatsSummary : [];
    if (list.length && list[0].id) openChat(list[0].id);
  }

  // ---- the conversation ----

  function openChat(id) {
    chat.id = id;
    chat.history = sdk.getChatHistory(id);
    chat.historyStarted = false;
    loadNewest();
  }

  function ensureChat() {
    if (chat.id) return Promise.resolve(chat.id);
    if (!chat.starting) {
      chat.starting = sdk.startChat()
        .then((c) => { if (!chat.id) openChat(c.id); return chat.id; })
        .finally(() => { chat.starting = null; });
    }
    return chat.starting;
  }

  // loadNewest shows the newest page of history: the first page of the
  // chat's iterator (whose later pages are the older ones), or, once that
  // was read, the first page of a fresh iterator (a resync).
  async function loadNewest() {
    const id = chat.id;
    const first = !chat.historyStarted;
    const it = first ? chat.history : sdk.getChatHistory(id);
    if (first) chat.historyStarted = true;
    let page;
    try {
      page = await it.next();
    } catch (e) {
      if (id === chat.id) showError('Could not load the conversation: ' + e.message);
      if (first && id === chat.id) chat.historyStarted = false;
      return;
    }
    if (id !== chat.id) return;
    if (first) chat.done = !!page.done;
    quietly(() => { for (const ev of page.value || []) addEvent(ev, 'sorted'); });
    updateOlder();
  }

  async function loadOlder() {
    if (!chat.historyStarted || chat.done || chat.loadingOlder) return;
    const id = chat.id;
    chat.loadingOlder = true;
    ui.older.disabled = true;
    ui.older.textContent = 'Loading older messages…';
    try {
      const page = await chat.history.next();
      if (id !== chat.id) return;
      chat.done = !!page.done;
      const sc = ui.scroller;
      const height = sc.scrollHeight;
      const first = ui.list.firstElementChild;
      quietly(() => { for (const ev of page.value || []) addEvent(ev, 'before', first); });
      sc.scrollTop += sc.scrollHeight - height; // keep the reader's place
    } catch (e) {
      showError('Could not load older messages: ' + e.message);
    } finally {
      chat.loadingOlder = false;
      ui.older.disabled = false;
      ui.older.textContent = 'Load older messages';
      updateOlder();
    }
  }

  function updateOlder() {
    const hide = !chat.historyStarted || chat.done;
    if (hide && document.activeElement === ui.older) ui.scroller.focus(); // don't drop keyboard focus
    ui.older.hidden = hide;
  }

  // quietly adds history without the live region reading it all out.
  function quietly(fn) {
    ui.list.setAttribute('aria-live', 'off');
    try { fn(); } finally { setTimeout(() => ui.list.setAttribute('aria-live', 'polite'), 300); }
  }

  // addEvent shows a chat event once, by id. mode: 'live' appends, 'sorted'
  // merges by timestamp, 'before' inserts before ref (an older page).
  function addEvent(ev, mode, ref) {
    if (!ev || !ev.id) return;
    const mine = ev.customId && chat.pending.get(ev.customId);
    if (mine) { // our own message, confirmed by its answer or its new_event
      chat.pending.delete(ev.customId);
      if (chat.events.has(ev.id)) return void mine.remove();
      mine.classList.remove('pending', 'failed');
      mine.dataset.eventId = ev.id;
      mine.dataset.author = ev.author || '';
      if (ev.timestamp) mine.dataset.ts = ev.timestamp;
      chat.events.set(ev.id, restyle(mine));
      return;
    }
    if (chat.events.has(ev.id)) return;
    const li = renderEvent(ev);
    if (!li) return;
    chat.events.set(ev.id, li);
    place(li, mode, ref);
  }

  function place(li, mode, ref) {
    const stick = nearBottom();
    if (mode === 'before') {
      ui.list.insertBefore(li, ref && ref.parentNode ? ref : null);
    } else if (mode === 'sorted') {
      const ts = Number(li.dataset.ts);
      let after = ui.list.lastElementChild;
      while (after && Number(after.dataset.ts) > ts) after = after.previousElementSibling;
      if (after) after.after(li); else ui.list.prepend(li);
    } else {
      ui.list.append(li);
    }
    ui.empty.hidden = true;
    if (mode !== 'before' && (stick || li.classList.contains('me'))) scrollToBottom();
  }

  function renderEvent(ev) {
    let body;
    if (ev.type === 'message') {
      body = el('p', 'text', String(ev.text ?? ''));
    } else if (ev.type === 'file') {
      body = fileView(ev);
    } else if (ev.type === 'system_message' && ev.text) {
      return note(String(ev.text), ev.timestamp);
    } else {
      return null; // other event types are not shown
    }
    const li = bubble(ev.author, ev.timestamp || Date.now());
    li.dataset.eventId = ev.id;
    li.append(body, timeView(Number(li.dataset.ts)));
    return li;
  }

  // bubble is a message's <li> with its author line; restyle sets the
  // side and the name, again whenever the user's data arrives.
  function bubble(author, ts) {
    const li = el('li', 'msg');
    li.dataset.testid = 'message';
    li.dataset.author = author || '';
    li.dataset.ts = ts;
    li.append(el('span', 'author'));
    return restyle(li);
  }

  function restyle(li) {
    if (!li.classList.contains('msg') || li.classList.contains('pending')) return li;
    const mine = isMine(li.dataset.author);
    li.classList.toggle('me', mine);
    li.classList.toggle('them', !mine);
    li.querySelector('.author').textContent = mine ? 'You' : nameOf(li.dataset.author);
    return li;
  }

  function note(text, ts) {
    const li = el('li', 'note', text);
    li.dataset.ts = ts || Date.now();
    return li;
  }

  function addNote(text) {
    place(note(text), 'live');
  }

  function fileView(ev) {
    const name = fileName(ev.url);
    const url = safeURL(ev.url);
    if (!url) return el('p', 'text', 'File: ' + name);
    const a = el('a', 'file');
    a.dataset.testid = 'attachment';
    a.href = url;
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    const asLink = () => {
      a.classList.remove('image');
      a.textContent = name;
      a.append(el('span', 'visually-hidden', ' (file, opens in a new tab)'));
    };
    if (!/^image\//i.test(ev.contentType || '')) {
      asLink();
      return a;
    }
    const img = el('img');
    img.alt = name;
    img.loading = 'lazy';
    if (ev.width > 0 && ev.height > 0) { img.width = ev.width; img.height = ev.height; }
    img.addEventListener('load', () => { // keep a reader who was at the bottom there
      const s = ui.scroller;
      if (s.scrollHeight - s.scrollTop - s.clientHeight < img.offsetHeight + 80) scrollToBottom();
    });
    img.addEventListener('error', asLink); // not an image after all (the simulator keeps no bytes)
    img.src = url;
    a.classList.add('image');
    a.append(img);
    return a;
  }

  function timeView(ts) {
    const t = el('time', 'ts');
    const d = new Date(ts);
    if (!isNaN(d)) {
      t.dateTime = d.toISOString();
      t.textContent = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    }
    return t;
  }

  function isMine(author) {
    if (!author) return false;
    if (author === chat.me) return true;
    const u = chat.users.get(author);
    return !!u && u.type === 'customer';
  }

  function nameOf(id) {
    const u = chat.users.get(id);
    return (u && u.name) || (u && u.type === 'customer' ? 'Customer' : 'Agent');
  }

  function renderTyping() {
    const names = [...chat.typing].map(nameOf);
    ui.typing.textContent = names.length ? names.join(', ') + (names.length > 1 ? ' are typing…' : ' is typing…') : '';
    ui.typing.dataset.active = String(names.length > 0);
  }

  // ---- sending ----

  async function sendText(text) {
    const customId = newId();
    const li = el('li', 'msg me pending');
    li.dataset.testid = 'message';
    li.dataset.ts = Date.now();
    li.append(el('span', 'author', 'You'), el('p', 'text', text), timeView(Date.now()));
    chat.pending.set(customId, li);
    place(li, 'live');
    try {
      const id = await ensureChat();
      addEvent(await sdk.sendMessage(id, { text, customId }), 'live');
    } catch (e) {
      if (!chat.pending.has(customId)) return;
      chat.pending.delete(customId);
      li.classList.remove('pending');
      li.classList.add('failed');
      const retry = el('button', 'retry', 'Not sent (' + e.message + '). Send again');
      retry.type = 'button';
      retry.addEventListener('click', () => { li.remove(); sendText(text); ui.input.focus(); });
      li.append(retry);
    }
  }

  function upload(file) {
    if (file.size > MAX_FILE) return showError(file.name + ' is larger than 10 MiB.');
    ui.file.disabled = true;
    clearTimeout(uploadShown);
    ui.upload.hidden = false;
    ui.uploadLabel.textContent = 'Sending ' + file.name;
    ui.progress.value = 0;
    const finish = (err) => {
      ui.file.disabled = false;
      uploadShown = setTimeout(() => { ui.upload.hidden = true; }, err ? 0 : 800);
      if (err) showError('Could not send ' + file.name + ': ' + err);
    };
    ensureChat()
      .then((id) => sdk.sendFile(id, { file }, { onProgress: (p) => { ui.progress.value = Math.round(100 * p); } }))
      .then(() => { ui.progress.value = 100; finish(); }, // the file event itself arrives as new_event
        (e) => finish(e.status === 413 ? 'it is too large' : e.message));
  }

  function sneakPeek(text) {
    if (!chat.id || !text.trim()) return;
    sdk.setSneakPeek(chat.id, text); // resolves nothing, as the SDK's
    ui.peek.hidden = false;
    clearTimeout(peekShown);
    peekShown = setTimeout(() => { ui.peek.hidden = true; }, 1500);
  }

  // ---- small helpers ----

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function nearBottom() {
    const s = ui.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  function scrollToBottom() {
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
  }

  function showError(text) {
    ui.error.textContent = text;
    ui.error.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { ui.error.hidden = true; }, 10000);
  }

  function safeURL(raw) {
    try {
      const u = new URL(String(raw), location.href);
      return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
    } catch (e) {
      return '';
    }
  }

  function fileName(raw) {
    const last = String(raw || '').split(/[?#]/)[0].split('/').pop();
    try { return decodeURIComponent(last) || 'file'; } catch (e) { return last || 'file'; }
  }

  function newId() {
    const b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  function storedToken() {
    let t = '';
    try { t = localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { /* storage off */ }
    if (!t) {
      t = 'demo-' + newId();
      try { localStorage.setItem(TOKEN_KEY, t); } catch (e) { /* storage off: one token per load */ }
    }
    return t;
  }

  function apiBase(raw) {
    if (!raw) return '';
    try {
      const u = new URL(raw);
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' &&
          !u.search && !u.hash && !u.username && !u.password) {
        return u.origin === location.origin ? '' : u.origin;
      }
    } catch (e) { /* reported below */ }
    showError('Ignoring ?api=' + raw + ': it is not an http(s) origin.');
    return '';
  }

  // ---- wiring ----

  ui.form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = ui.input.value.trim();
    if (!text) return;
    clearTimeout(peekTimer);
    ui.input.value = '';
    autosize();
    sendText(text);
  });
  ui.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      ui.form.requestSubmit();
    }
  });
  ui.input.addEventListener('input', () => {
    autosize();
    clearTimeout(peekTimer);
    const text = ui.input.value;
    peekTimer = setTimeout(() => sneakPeek(text), PEEK_DELAY);
  });
  function autosize() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight, 160) + 'px';
  }
  ui.file.addEventListener('change', () => {
    const f = ui.file.files && ui.file.files[0];
    ui.file.value = '';
    if (f) upload(f);
  });
  ui.older.addEventListener('click', loadOlder);
  ui.scroller.addEventListener('scroll', () => { if (ui.scroller.scrollTop < 40) loadOlder(); }, { passive: true });
  ui.reconnect.addEventListener('click', connect);
  ui.docs.href = api + '/docs';

  connect();
})();
