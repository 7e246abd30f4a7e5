import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';

// Web UI: the access token came in the URL and now lives in an HttpOnly cookie; take it out of the
// address bar so it is not shown, bookmarked or shared by accident.
if (new URLSearchParams(location.search).has('token')) history.replaceState(null, '', location.pathname);

mount(App, { target: document.getElementById('app')! });
