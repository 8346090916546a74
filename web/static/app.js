// The chatio-gateway demo customer chat widget. It uses only the public
// REST and Server-Sent Events API (API.md), as a page on another origin
// would: ?api=http://host:port picks the gateway (default: this origin),
// ?token=T the customer token (default: a random one kept in localStorage).
'use strict';

(() => {
  const MAX_FILE = 10 << 20; // the gateway's file limit
  const PEEK_DELAY = 300; // ms of quiet typing before a sneak peek goes out
  const SEEN_MAX = 2000; // stream ids remembered for de-duplication
  const TOKEN_KEY = 'chatio-demo-token';
  const STREAM_EVENTS = ['customer_id', 'connected', 'user_data', 'new_event', 'user_is_typing',
    'user_stopped_typing', 'thread_closed', 'connection_lost', 'connection_restored', 'disconnected'];
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

  // The stream: one EventSource at a time; gen tells a current callback
  // from a stale one.
  const stream = {
    es: null, gen: 0, timer: 0, attempt: 0,
    lastId: '', // id of the last event handled: resume point
    seen: new Set(), // recent event ids, insertion-ordered
    opened: false, // a stream has been open once
    connected: false, // a `connected` snapshot has arrived once
    upstreamDown: false, // between connection_lost and connection_restored
    stopped: false, // disconnected by the server, or refused: no automatic retry
  };
  // The conversation shown: one chat.
  const chat = {
    id: '', me: '', starting: null,
    users: new Map(), // user id → user_data
    events: new Map(), // event id → its <li>
    pending: new Map(), // customId → <li> of a message being sent
    typing: new Set(), // user ids typing
    historyStarted: false, cursor: '', done: false, loadingOlder: false,
  };

  // ---- REST ----

  async function call(method, path, body) {
    const init = { method, headers: { Authorization: 'Bearer ' + token }, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(api + path, init);
    } catch (e) {
      throw apiError(0, { message: 'the gateway cannot be reached' });
    }
    let data = null;
    if (res.status !== 204) {
      try { data = await res.json(); } catch (e) { /* no JSON body */ }
    }
    if (!res.ok) throw apiError(res.status, data, res.headers.get('Retry-After'));
    return data;
  }

  function apiError(status, body, retryAfter) {
    const e = new Error((body && body.message) || 'HTTP ' + status);
    e.status = status;
    e.code = body && body.code;
    e.retryAfter = Number(retryAfter) || 0;
    return e;
  }

  const chatPath = (id, suffix) => '/v1/chats/' + encodeURIComponent(id) + suffix;

  // ---- the event stream ----

  // connect gets a fresh single-use ticket and opens the stream, resuming
  // after the last event seen. The browser's own reconnect is never used
  // (it would reuse the spent ticket): any error closes the EventSource
  // and comes back here after a jittered backoff.
  async function connect() {
    clearTimeout(stream.timer);
    closeStream();
    const gen = ++stream.gen;
    stream.stopped = false;
    ui.reconnect.hidden = true;
    setState(stream.opened ? 'reconnecting' : 'connecting');
    let ticket;
    try {
      ticket = (await call('POST', '/v1/tickets')).ticket;
    } catch (e) {
      if (gen !== stream.gen) return;
      if (e.status === 401 || e.status === 400) return stop('error', e.message);
      return retryLater(gen, e.retryAfter);
    }
    if (gen !== stream.gen) return;
    let url = api + '/v1/events?ticket=' + encodeURIComponent(ticket);
    if (stream.lastId) url += '&lastEventId=' + encodeURIComponent(stream.lastId);
    const es = new EventSource(url);
    stream.es = es;
    let prevId = ''; // an event without an id line repeats the previous one
    es.onopen = () => {
      if (gen !== stream.gen) return;
      if (stream.opened && stream.connected) setState(stream.upstreamDown ? 'reconnecting' : 'restored');
      stream.opened = true;
    };
    es.onerror = () => {
      if (gen !== stream.gen) return;
      closeStream();
      if (stream.stopped) return void (ui.reconnect.hidden = false); // after `disconnected`
      setState(stream.opened ? 'reconnecting' : 'connecting');
      retryLater(gen);
    };
    for (const name of STREAM_EVENTS) {
      es.addEventListener(name, (m) => {
        if (gen !== stream.gen) return;
        stream.attempt = 0; // events flow: the next failure retries at once
        const id = m.lastEventId;
        if (id && id !== prevId) {
          prevId = id;
          if (seenBefore(id)) return;
          stream.lastId = id;
        }
        let data = null;
        try { data = m.data ? JSON.parse(m.data) : null; } catch (e) { return; }
        try { on[name](data); } catch (e) { console.error('handling', name, e); }
      });
    }
  }

  function closeStream() {
    if (stream.es) stream.es.close();
    stream.es = null;
  }

  function retryLater(gen, afterSeconds) {
    const n = stream.attempt++;
    const cap = Math.min(30000, 500 * 2 ** n);
    const delay = Math.max((afterSeconds || 0) * 1000, n === 0 ? 200 : cap / 2 + Math.random() * cap / 2);
    stream.timer = setTimeout(() => { if (gen === stream.gen) connect(); }, delay);
  }

  function stop(state, detail) {
    stream.gen++;
    clearTimeout(stream.timer);
    closeStream();
    stream.stopped = true;
    setState(state, detail);
    ui.reconnect.hidden = false;
  }

  function seenBefore(id) {
    if (stream.seen.has(id)) return true;
    stream.seen.add(id);
    if (stream.seen.size > SEEN_MAX) stream.seen.delete(stream.seen.values().next().value);
    return false;
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
      stream.upstreamDown = false;
      stream.stopped = false;
      ui.reconnect.hidden = true;
      setState(stream.connected ? 'restored' : 'connected');
      stream.connected = true;
      resync(summary);
    },
    connection_lost() {
      stream.upstreamDown = true;
      setState('reconnecting');
    },
    connection_restored(summary) {
      stream.upstreamDown = false;
      stream.stopped = false;
      ui.reconnect.hidden = true;
      setState('restored');
      resync(summary);
    },
    disconnected(data) {
      stream.stopped = true; // the stream ends next; stay down until asked
      setState('disconnected', data && data.reason);
      ui.reconnect.hidden = false;
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
    chat.historyStarted = false;
    loadNewest();
  }

  function ensureChat() {
    if (chat.id) return Promise.resolve(chat.id);
    if (!chat.starting) {
      chat.starting = call('POST', '/v1/chats', {})
        .then((c) => { if (!chat.id) openChat(c.id); return chat.id; })
        .finally(() => { chat.starting = null; });
    }
    return chat.starting;
  }

  async function loadNewest() {
    const id = chat.id;
    let page;
    try {
      page = await call('GET', chatPath(id, '/history'));
    } catch (e) {
      if (id === chat.id) showError('Could not load the conversation: ' + e.message);
      return;
    }
    if (id !== chat.id) return;
    if (!chat.historyStarted) {
      chat.historyStarted = true;
      chat.cursor = page.cursor || '';
      chat.done = !!page.done || !page.cursor;
    }
    quietly(() => { for (const ev of page.events || []) addEvent(ev, 'sorted'); });
    updateOlder();
  }

  async function loadOlder() {
    if (!chat.historyStarted || chat.done || chat.loadingOlder) return;
    const id = chat.id;
    chat.loadingOlder = true;
    ui.older.disabled = true;
    ui.older.textContent = 'Loading older messages…';
    try {
      const page = await call('GET', chatPath(id, '/history?cursor=' + encodeURIComponent(chat.cursor)));
      if (id !== chat.id) return;
      chat.cursor = page.cursor || '';
      chat.done = !!page.done || !page.cursor;
      const sc = ui.scroller;
      const height = sc.scrollHeight;
      const first = ui.list.firstElementChild;
      quietly(() => { for (const ev of page.events || []) addEvent(ev, 'before', first); });
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
      const ev = await call('POST', chatPath(id, '/messages'), { text, customId });
      addEvent(ev, 'live');
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
    ensureChat().then((id) => {
      const form = new FormData();
      form.append('file', file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open('POST', api + chatPath(id, '/files'));
      xhr.setRequestHeader('Authorization', 'Bearer ' + token);
      xhr.upload.onprogress = (e) => { if (e.lengthComputable) ui.progress.value = Math.round(100 * e.loaded / e.total); };
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          ui.progress.value = 100;
          return finish(); // the file event itself arrives as new_event
        }
        let msg = 'HTTP ' + xhr.status;
        try { msg = JSON.parse(xhr.responseText).message || msg; } catch (e) { /* not JSON */ }
        finish(xhr.status === 413 ? 'it is too large' : msg);
      };
      xhr.onerror = () => finish('the gateway cannot be reached');
      xhr.onabort = () => finish('cancelled');
      xhr.send(form);
    }, (e) => finish(e.message));
  }

  function sneakPeek(text) {
    if (!chat.id || !text.trim()) return;
    call('PUT', chatPath(chat.id, '/sneak-peek'), { text }).then(() => {
      ui.peek.hidden = false;
      clearTimeout(peekShown);
      peekShown = setTimeout(() => { ui.peek.hidden = true; }, 1500);
    }, () => { /* best effort */ });
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
  ui.reconnect.addEventListener('click', () => { stream.attempt = 0; connect(); });
  window.addEventListener('online', () => { if (!stream.es && !stream.stopped) { stream.attempt = 0; connect(); } });
  ui.docs.href = api + '/docs';

  connect();
})();
