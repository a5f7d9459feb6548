// Live job pages: re-fetch the status fragment until the job has finished.
(function () {
  function poll(box) {
    const url = box.dataset.poll;
    const tick = () => fetch(url, {credentials: "same-origin"}).then(r => r.text()).then(html => {
      box.innerHTML = html;
      const log = document.getElementById("job-log");
      if (log) log.scrollTop = log.scrollHeight;
      if (!box.querySelector("[data-done]")) setTimeout(tick, 1000);
    }).catch(() => setTimeout(tick, 3000));
    if (!box.hasAttribute("data-done")) setTimeout(tick, 1000);
  }
  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("[data-poll]").forEach(poll));
})();
