// The dashboard reloads itself every 15 s while its tab is visible and
// nobody is filling in a form (a reload would lose what was typed). The
// page works without this file.
setInterval(() => {
  const typing = document.activeElement instanceof HTMLInputElement ||
    [...document.querySelectorAll('form.action input[name=reason], form.search input')]
      .some((input) => input.value !== '' && input.defaultValue !== input.value);
  if (document.visibilityState === 'visible' && !typing) location.reload();
}, 15000);
