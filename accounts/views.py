"""Staff pages for customers: the searchable list and the customer page."""
from __future__ import annotations

from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404
from django.views.generic import TemplateView

from crm.core.views import StaffPermissionRequiredMixin

from .customer_page import customer_list_filters, customer_sections
from .forms import DEFAULT_SORT, CustomerSearchForm
from .models import Customer
from .selectors import customer_contact, customer_events, customer_feedback, customer_list

PII_PERMISSION = "accounts.view_customer_pii"
CUSTOMERS_PER_PAGE = 25
EVENTS_PER_PAGE = 20
FEEDBACK_PER_PAGE = 10


def can_see_pii(user) -> bool:
    return user.has_perm(PII_PERMISSION)


class CustomerListView(StaffPermissionRequiredMixin, TemplateView):
    permission_required = "accounts.view_customer"
    template_name = "accounts/customer_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = CustomerSearchForm(self.request.GET or None)
        query, sort = "", DEFAULT_SORT
        if form.is_bound and form.is_valid():
            query, sort = form.cleaned_data["q"], form.cleaned_data["sort"]
        filter_qs, filters = customer_list_filters(self.request)
        page = Paginator(customer_list(query=query, sort=sort, filters=filter_qs), CUSTOMERS_PER_PAGE).get_page(
            self.request.GET.get("page"))
        unmasked = can_see_pii(self.request.user)
        rows = [(customer, customer_contact(customer, unmasked=unmasked)) for customer in page.object_list]
        context.update(form=form, query=query, sort=sort, page_obj=page, rows=rows, masked=not unmasked, filters=filters)
        return context


class CustomerDetailView(StaffPermissionRequiredMixin, TemplateView):
    """The customer page. Later issues add sections through the template's blocks."""

    permission_required = "accounts.view_customer"
    template_name = "accounts/customer_detail.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        customer = get_object_or_404(Customer, pk=self.kwargs["pk"])
        unmasked = can_see_pii(self.request.user)
        events = Paginator(customer_events(customer=customer), EVENTS_PER_PAGE).get_page(self.request.GET.get("events_page"))
        feedback = Paginator(customer_feedback(customer=customer), FEEDBACK_PER_PAGE).get_page(
            self.request.GET.get("feedback_page")
        )
        context.update(
            customer=customer,
            contact=customer_contact(customer, unmasked=unmasked),
            attributes=sorted((customer.attributes or {}).items()),
            events_page=events,
            feedback_page=feedback,
            sections=customer_sections(self.request, customer),
        )
        return context
